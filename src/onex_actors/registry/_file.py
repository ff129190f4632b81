"""A contract registry backed by a directory tree of YAML files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs
import yaml

from onex_actors.core import (
    AnyContract,
    ContractError,
    NodeContract,
    RuntimeHostContract,
    command_loop_problem,
    command_loops,
    loop_problem,
    parse_contract,
    then_loops,
    workflow_loop_problem,
    workflow_loops,
)

__all__ = ["ContractTree", "FileRegistry"]


@attrs.frozen
class ContractTree:
    """Every contract of a directory, validated, with the file each came from."""

    runtimes: Mapping[str, RuntimeHostContract]
    nodes: Mapping[str, NodeContract]
    sources: Mapping[str, str]

    def hosts_by_node(self) -> dict[str, list[str]]:
        """Map each node a runtime of the tree hosts to those runtimes, by name."""
        hosts: dict[str, list[str]] = {}
        for runtime_id in sorted(self.runtimes):
            for node_id in self.runtimes[runtime_id].host_selector.node_ids:
                hosts.setdefault(node_id, []).append(runtime_id)
        return hosts


class FileRegistry:
    """Reads ``<root>/runtime/*.yaml`` and ``<root>/nodes/*.yaml``.

    The whole tree is read and validated once, on first use; ``ContractError`` lists
    every problem found in it, each naming its file and key path.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._tree: ContractTree | None = None

    @property
    def tree(self) -> ContractTree:
        """The validated contract tree (read on first access)."""
        if self._tree is None:
            self._tree = load_tree(self.root)
        return self._tree

    def runtime_contract(self, runtime_id: str) -> RuntimeHostContract:
        """Return the runtime-host contract ``runtime_id``."""
        contract = self.tree.runtimes.get(runtime_id)
        if contract is None:
            known = ", ".join(sorted(self.tree.runtimes)) or "none"
            raise ContractError(
                [
                    f"{self.root / 'runtime' / (runtime_id + '.yaml')}: no runtime contract "
                    f"{runtime_id!r} (runtimes in {self.root}: {known})"
                ]
            )
        return contract

    def node_contracts(self) -> Mapping[str, NodeContract]:
        """Return every node contract, by node id."""
        return self.tree.nodes

    def runtime_ids(self) -> frozenset[str]:
        """Return the ids of the runtime contracts under the root."""
        return frozenset(self.tree.runtimes)

    def source_of(self, contract_id: str) -> str:
        """Return the file the contract with this id was read from."""
        return self.tree.sources.get(contract_id, str(self.root))


def load_tree(root: Path) -> ContractTree:
    """Read and validate every contract under ``root``.

    Raises one ``ContractError`` listing every problem found.
    """
    if not (root / "runtime").is_dir() and not (root / "nodes").is_dir():
        raise ContractError(
            [
                f"{root}: not a contract tree: expected a runtime/ or nodes/ folder of YAML "
                "files in it"
            ]
        )
    problems: list[str] = []
    runtimes: dict[str, RuntimeHostContract] = {}
    nodes: dict[str, NodeContract] = {}
    sources: dict[str, str] = {}
    for subdir, want_runtime in (("runtime", True), ("nodes", False)):
        for path in sorted((root / subdir).glob("*.y*ml")):
            try:
                contract = _read(path)
            except ContractError as exc:
                problems.extend(exc.problems)
                continue
            problem = _misplaced(path, contract, want_runtime=want_runtime)
            if problem:
                problems.append(problem)
                continue
            if contract.node_id in sources:
                problems.append(
                    f"{path}: key 'node_id': {contract.node_id!r} is already defined in "
                    f"{sources[contract.node_id]}; node ids must be unique"
                )
                continue
            sources[contract.node_id] = str(path)
            if isinstance(contract, RuntimeHostContract):
                runtimes[contract.node_id] = contract
            else:
                nodes[contract.node_id] = contract
    problems += [loop_problem(loop, sources) for loop in then_loops(nodes)]
    problems += [workflow_loop_problem(loop, sources) for loop in workflow_loops(nodes)]
    problems += [command_loop_problem(loop, sources) for loop in command_loops(nodes)]
    if problems:
        raise ContractError(problems)
    return ContractTree(runtimes=runtimes, nodes=nodes, sources=sources)


def _read(path: Path) -> AnyContract:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContractError([f"{path}: not valid YAML{at}: {problem}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError([f"{path}: cannot read contract: {exc}"]) from None
    if isinstance(document, dict):
        for key in ("payload_schema", "result_schema"):
            if isinstance(document.get(key), str):
                document[key] = _schema_file(path, key, document[key])
    return parse_contract(document, source=str(path))


def _schema_file(contract: Path, key: str, name: str) -> object:
    """Read the JSON or YAML schema file ``name`` beside ``contract`` (its ``key``)."""
    path = contract.parent / name
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except OSError as exc:
        raise ContractError(
            [f"{contract}: key {key!r}: cannot read schema file {path}: {exc.strerror or exc}"]
        ) from None
    except yaml.YAMLError as exc:
        raise ContractError(
            [f"{contract}: key {key!r}: {path} is not JSON or YAML: {exc}"]
        ) from None


def _misplaced(path: Path, contract: AnyContract, *, want_runtime: bool) -> str | None:
    is_runtime = isinstance(contract, RuntimeHostContract)
    if is_runtime != want_runtime:
        folder = "runtime/" if is_runtime else "nodes/"
        return f"{path}: key 'kind': a {contract.kind.value} contract belongs under {folder}"
    if path.stem != contract.node_id:
        return (
            f"{path}: key 'node_id': {contract.node_id!r} does not match the file name; "
            f"rename the file to {contract.node_id}{path.suffix}"
        )
    return None
