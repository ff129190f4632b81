"""The port through which the runtime reads contracts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from onex_actors.core import NodeContract, RuntimeHostContract

__all__ = ["ContractRegistry"]


class ContractRegistry(Protocol):
    """Where contracts come from: a directory of YAML files, a service, a test fixture."""

    def runtime_contract(self, runtime_id: str) -> RuntimeHostContract:
        """Return the runtime-host contract ``runtime_id``; raise ``ContractError`` if absent."""
        ...

    def node_contracts(self) -> Mapping[str, NodeContract]:
        """Return every node contract, by node id."""
        ...

    def source_of(self, contract_id: str) -> str:
        """Where the contract with this node or runtime id was read from (for error messages)."""
        ...
