"""``onex contracts ...``: commands about contract trees."""

from __future__ import annotations

from pathlib import Path

import cyclopts

from onex_actors.app import from_project_root
from onex_actors.core import ContractError, EffectContract, build_routing_table
from onex_actors.registry import load_tree

__all__ = ["contracts_app"]

contracts_app = cyclopts.App(name="contracts", help="Validate and inspect contract trees.")


@contracts_app.command
def validate(directory: Path | None = None, /) -> int:
    """Validate every contract under DIRECTORY and check each runtime against the nodes.

    Prints what was found, or each problem on its own line; exits 1 on any problem.

    Parameters
    ----------
    directory
        Contract tree holding ``runtime/`` and ``nodes/``.
    """
    try:
        tree = load_tree(directory or from_project_root(Path("contracts")))
        problems: list[str] = []
        for runtime_id, runtime in sorted(tree.runtimes.items()):
            try:
                build_routing_table(runtime, tree.nodes, source=tree.sources[runtime_id])
            except ContractError as exc:
                problems.extend(exc.problems)
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
    print(f"ok: {len(tree.runtimes)} runtime(s), {len(tree.nodes)} node(s) in {directory}")
    return 0
