"""``onex contracts ...``: commands about contract trees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import cyclopts
import yaml
from cyclopts import Parameter

from onex_actors.app import from_project_root, import_function
from onex_actors.core import (
    SCHEMA_FILE,
    ComputeContract,
    ConfigError,
    ContractError,
    EffectContract,
    asyncapi_document,
    build_routing_table,
    contract_json_schema,
    flow_graph,
    parse_contract,
    scaffold,
)
from onex_actors.registry import ContractTree, load_tree

Tree = Annotated[Path | None, Parameter(name=["--directory", "--contracts-dir"])]
"""A contract tree option, spelt as ``onex host`` and ``onex call`` spell it too."""

__all__ = ["contracts_app"]

contracts_app = cyclopts.App(name="contracts", help="Validate and inspect contract trees.")


@contracts_app.command
def validate(path: Path | None = None, /, *, directory: Tree = None) -> int:
    """Validate every contract under PATH and check each runtime against the nodes.

    Prints what was found, or each problem on its own line; exits 1 on any problem.

    Parameters
    ----------
    path
        Contract tree holding ``runtime/`` and ``nodes/``.
    directory
        The same, as the other commands name it.
    """
    directory = path or directory or from_project_root(Path("contracts"))
    try:
        tree = load_tree(directory)
        problems: list[str] = []
        for runtime_id, runtime in sorted(tree.runtimes.items()):
            try:
                build_routing_table(
                    runtime,
                    tree.nodes,
                    source=tree.sources[runtime_id],
                    node_sources=tree.sources,
                )
            except ContractError as exc:
                problems.extend(exc.problems)
        problems += _function_problems(tree, directory.resolve().parent)
        if problems:
            raise ContractError(problems)
    except ContractError as exc:
        for problem in exc.problems:
            print(f"error: {problem}")
        print(f"{len(exc.problems)} problem(s) in {directory}")
        return 1
    for runtime in sorted(tree.runtimes.values(), key=lambda c: c.node_id):
        hosted = ", ".join(runtime.host_selector.node_ids)
        print(f"runtime {runtime.contract_id}: hosts {hosted}")
    for node in sorted(tree.nodes.values(), key=lambda c: c.node_id):
        family = f" ({node.effect_type.value})" if isinstance(node, EffectContract) else ""
        print(f"node    {node.contract_id}: {node.kind.value}{family}")
    for node_id, hosts in sorted(tree.hosts_by_node().items()):
        if len(hosts) > 1 and not tree.nodes[node_id].fan_out:
            print(
                f"note: {node_id} is hosted by {', '.join(hosts)}: one answers it at a time "
                "(a runtime will not start while another answers it; stopping one moves it "
                "to the next, where it left off)"
            )
    print(f"ok: {len(tree.runtimes)} runtime(s), {len(tree.nodes)} node(s) in {_shown(directory)}")
    return 0


def _function_problems(tree: ContractTree, project: Path) -> list[str]:
    """Import each compute node's function as a host would; say why one cannot serve."""
    problems = []
    for node_id, node in sorted(tree.nodes.items()):
        if isinstance(node, ComputeContract) and node.compute.function is not None:
            try:
                import_function(node_id, node.compute.function, project)
            except ConfigError as exc:
                problems.append(f"{tree.sources[node_id]}: {exc}")
    return problems


@contracts_app.command
def schema(out: Path | None = None, /, *, check: bool = False) -> int:
    """Write the JSON Schema of contract files, for editors to complete and check them.

    A contract whose first line is ``# yaml-language-server: $schema=<path to OUT>`` is
    checked as it is typed (VS Code, JetBrains). Prints what it wrote.

    Parameters
    ----------
    out
        The file to write; default ``schemas/onex-contract.schema.json`` of the project.
    check
        Write nothing; exit 1 if OUT is missing or not what this version would write.
    """
    out = out or from_project_root(Path(SCHEMA_FILE))
    text = json.dumps(contract_json_schema(), indent=2) + "\n"
    if check:
        current = out.read_text() if out.is_file() else None
        if current != text:
            state = "is missing" if current is None else "is out of date"
            print(f"error: {_shown(out)} {state}: run `onex contracts schema` and commit it")
            return 1
        print(f"ok: {_shown(out)} is current")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    kinds = contract_json_schema()["properties"]["kind"]["enum"]
    print(f"wrote {_shown(out)} ({len(kinds)} contract kinds: {', '.join(kinds)})")
    return 0


@contracts_app.command
def graph(runtime: str | None = None, /, *, directory: Tree = None) -> int:
    """Print the flow of RUNTIME (or of every runtime) as a Mermaid flowchart.

    Nodes by kind and family, the topics each reads and writes, and ``then:`` edges.

    Parameters
    ----------
    runtime
        Runtime-host contract to draw; default: every runtime of the tree.
    directory
        Contract tree holding ``runtime/`` and ``nodes/``.
    """
    tree = _tree_with(directory, runtime)
    if tree is None:
        return 1
    runtimes = {runtime: tree.runtimes[runtime]} if runtime is not None else tree.runtimes
    print(flow_graph(runtimes, tree.nodes), end="")
    return 0


@contracts_app.command
def new(
    kind: str,
    name: str,
    /,
    *,
    family: str = "local",
    hosts: list[str] | None = None,
    directory: Tree = None,
) -> int:
    """Write a commented contract of KIND named NAME that validates at once.

    A node goes to ``nodes/NAME.yaml``, a runtime to ``runtime/NAME.yaml`` of the tree;
    an existing file is never overwritten. A runtime hosts HOSTS, by default the nodes
    of the tree no runtime hosts yet, with the handler families they need.

    Parameters
    ----------
    kind
        ``effect``, ``compute``, ``reducer`` or ``orchestrator`` (a node), or ``runtime``
        (a runtime host).
    name
        Its id (the file's name): lowercase letters, digits and '-'.
    family
        The effect family of a node: local, http, db, llm, embedding or vector.
    hosts
        The nodes a new runtime hosts (``--hosts a --hosts b``).
    directory
        Contract tree holding ``runtime/`` and ``nodes/``.
    """
    directory = directory or from_project_root(Path("contracts"))
    chosen: list[str] = []
    try:
        if kind == "runtime":
            chosen, families = _hosting(directory, hosts)
            text = scaffold(kind, name, hosts=chosen, families=families)
        elif kind == "orchestrator":
            text = scaffold(kind, name, step_node=_step_node(directory, name))
        else:
            text = scaffold(kind, name, family)
    except (ValueError, ContractError) as exc:
        for line in exc.problems if isinstance(exc, ContractError) else [str(exc)]:
            print(f"error: {line}")
        return 1
    path = directory / ("runtime" if kind == "runtime" else "nodes") / f"{name}.yaml"
    if path.exists():
        print(f"error: {_shown(path)} exists; pick another name or edit that file")
        return 1
    parse_contract(yaml.safe_load(text), source=str(path))  # a scaffold always validates
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    then = (
        f"it hosts {', '.join(chosen)}"
        if kind == "runtime"
        else f"list {name} in host_selector.node_ids of a runtime (and its family in "
        "handlers.families)"
        if kind == "effect"
        else f"list {name} in host_selector.node_ids of a runtime"
    )
    print(f"wrote {_shown(path)}: {then}, then `onex contracts validate`")
    schema_file = path.parents[2] / SCHEMA_FILE  # where its first line points
    if not schema_file.exists():
        print(
            f"note: editors complete and check it against {_shown(schema_file)}, not written "
            f"yet: `onex contracts schema {_shown(schema_file)}` writes it"
        )
    return 0


def _tree_in(directory: Path) -> ContractTree | None:
    """Return the tree under ``directory`` (``None`` before its first node).

    ``ContractError`` if it does not load.
    """
    return load_tree(directory) if (directory / "nodes").is_dir() else None


def _step_node(directory: Path, name: str) -> str:
    """Return the node of the tree a new orchestrator's steps call.

    An echo node if the tree has one (its result is its command, so the scaffold's
    ``steps.first.output.text`` holds), else another effect node, else a pure one.
    ``ContractError`` if the tree does not load or has no node to call.
    """
    tree = _tree_in(directory)
    nodes = {n: c for n, c in (tree.nodes if tree is not None else {}).items() if n != name}

    def preference(node_id: str) -> tuple[int, str]:
        contract = nodes[node_id]
        if isinstance(contract, EffectContract):
            echoes = contract.local is not None and contract.local.operation == "echo"
            return (0 if echoes else 1, node_id)
        return (2, node_id)

    if not nodes:
        raise ContractError(
            [
                f"an orchestrator's steps call other nodes, and {_shown(directory)} has none: "
                "add one first (onex contracts new effect NAME)"
            ]
        )
    return min(nodes, key=preference)


def _hosting(directory: Path, hosts: list[str] | None) -> tuple[list[str], list[str]]:
    """Return the nodes a new runtime hosts and the handler families they need.

    ``hosts`` if given (each a node of the tree), else the tree's nodes no runtime hosts.
    ``ContractError`` if the tree does not load, or a named node is not in it.
    """
    tree = _tree_in(directory)
    nodes = tree.nodes if tree is not None else {}
    if hosts:
        missing = [n for n in hosts if n not in nodes]
        if missing:
            known = ", ".join(sorted(nodes)) or "none"
            raise ContractError(
                [
                    f"--hosts {n!r}: no node contract in {_shown(directory)} (its nodes: {known})"
                    for n in missing
                ]
            )
        chosen = list(dict.fromkeys(hosts))
    else:
        hosted = set(tree.hosts_by_node()) if tree is not None else set()
        chosen = sorted(set(nodes) - hosted)
        if nodes and not chosen:
            raise ContractError(
                [
                    f"every node of {_shown(directory)} is hosted by a runtime already: name "
                    "the ones the new runtime hosts (--hosts NODE --hosts ...)"
                ]
            )
    families = sorted(
        {
            contract.effect_type.value
            for node_id in chosen
            if isinstance(contract := nodes[node_id], EffectContract)
        }
    )
    return chosen, families or ["local"]


@contracts_app.command
def asyncapi(
    runtime: str = "runtime-dev",
    /,
    *,
    out: Path | None = None,
    bootstrap_servers: str = "127.0.0.1:9092",
    directory: Tree = None,
) -> int:
    """Write the AsyncAPI 3.0 document of RUNTIME: topics, messages, an operation per node.

    YAML on standard output, or into OUT (``.json`` for JSON).

    Parameters
    ----------
    runtime
        Runtime-host contract to describe.
    out
        File to write instead of printing.
    bootstrap_servers
        The Kafka cluster the document names as its server.
    directory
        Contract tree holding ``runtime/`` and ``nodes/``.
    """
    tree = _tree_with(directory, runtime)
    if tree is None:
        return 1
    document = asyncapi_document(
        tree.runtimes[runtime], tree.nodes, bootstrap_servers=bootstrap_servers
    )
    if out is not None and out.suffix == ".json":
        text = json.dumps(document, indent=2) + "\n"
    else:
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if out is None:
        print(text, end="")
        return 0
    out.write_text(text)
    operations, channels = len(document["operations"]), len(document["channels"])
    print(f"wrote {_shown(out)}: {operations} operations, {channels} channels")
    return 0


def _tree_with(directory: Path | None, runtime: str | None) -> ContractTree | None:
    """Load the tree (the project's by default) holding ``runtime``; else print why, None."""
    directory = directory or from_project_root(Path("contracts"))
    try:
        tree = load_tree(directory)
        if runtime is not None and runtime not in tree.runtimes:
            known = ", ".join(sorted(tree.runtimes)) or "none"
            raise ContractError(
                [f"{directory}: no runtime contract {runtime!r} (runtimes: {known})"]
            )
    except ContractError as exc:
        for problem in exc.problems:
            print(f"error: {problem}")
        return None
    return tree


def _shown(directory: Path) -> Path:
    """``directory`` relative to the current one when it lies below it."""
    try:
        return directory.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return directory
