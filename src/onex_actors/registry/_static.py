"""A contract registry built from contract models in memory (embedding, tests)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from onex_actors.core import ContractError, NodeContract, RuntimeHostContract

__all__ = ["StaticRegistry"]


class StaticRegistry:
    """Serves the given runtime and node contracts; ids must be unique."""

    def __init__(
        self, runtimes: Iterable[RuntimeHostContract], nodes: Iterable[NodeContract]
    ) -> None:
        self._runtimes = {r.node_id: r for r in runtimes}
        self._nodes: dict[str, NodeContract] = {}
        for node in nodes:
            if node.node_id in self._nodes:
                raise ContractError([f"<memory>: node id {node.node_id!r} is given twice"])
            self._nodes[node.node_id] = node

    def runtime_contract(self, runtime_id: str) -> RuntimeHostContract:
        """Return the runtime-host contract ``runtime_id``."""
        try:
            return self._runtimes[runtime_id]
        except KeyError:
            known = ", ".join(sorted(self._runtimes)) or "none"
            raise ContractError(
                [f"<memory>: no runtime contract {runtime_id!r} (known: {known})"]
            ) from None

    def node_contracts(self) -> Mapping[str, NodeContract]:
        """Return every node contract, by node id."""
        return self._nodes

    def runtime_ids(self) -> frozenset[str]:
        """Return the ids of the runtime contracts it serves."""
        return frozenset(self._runtimes)

    def source_of(self, contract_id: str) -> str:
        """Return ``<memory>``: these contracts come from no file."""
        return f"<memory:{contract_id}>"
