"""The loops a contract tree would run for ever: ``then:`` chains and workflows (pure).

Each node forwards at most one command per result, so the ``then:`` edges form a graph
of out-degree one: a walk from any node either ends or closes a loop. A loop in the
contracts is refused when they are loaded; one that only shows at run time (the same
commands reaching a node again through nodes outside one tree) is cut by the hop count
each forwarded command carries (``HOPS_HEADER``, checked against ``then.max_hops`` by
``forwarded_command``).

A workflow whose step (or compensation) is another workflow starts an instance of it;
workflows that reach themselves that way would nest instances for ever, and are refused
when loaded too.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._contracts import EffectContract
from ._node_contracts import NodeContract
from ._workflow_contract import OrchestratorContract

__all__ = ["loop_problem", "then_loops", "workflow_loop_problem", "workflow_loops"]


def then_loops(nodes: Mapping[str, NodeContract]) -> list[list[str]]:
    """Return each loop of ``then:`` edges among ``nodes``: the node ids along it, in order.

    A loop starts at its first node in sorted order; ``[a]`` is a node forwarding to
    itself. Edges to nodes not in ``nodes`` end their walk.
    """
    edges = {
        node_id: contract.then.node_id
        for node_id, contract in nodes.items()
        if isinstance(contract, EffectContract) and contract.then is not None
    }
    loops: list[list[str]] = []
    walked: set[str] = set()
    for start in sorted(edges):
        path: list[str] = []
        index: dict[str, int] = {}
        node = start
        while node in edges and node not in walked and node not in index:
            index[node] = len(path)
            path.append(node)
            node = edges[node]
        if node in index:
            loop = path[index[node] :]
            first = loop.index(min(loop))
            loops.append(loop[first:] + loop[:first])
        walked.update(path)
    return loops


def workflow_loops(nodes: Mapping[str, NodeContract]) -> list[list[str]]:
    """Return a loop of workflows starting one another through ``nodes``' steps, per node.

    Each loop is the orchestrators along it, in order, from the first in sorted order
    (``[a]``: a workflow with a step of its own); one loop is given for each such first
    node, enough to name the problem. Steps to nodes not in ``nodes`` end their walk.
    """
    edges = {
        node_id: [n for n in contract.step_nodes if isinstance(nodes.get(n), OrchestratorContract)]
        for node_id, contract in nodes.items()
        if isinstance(contract, OrchestratorContract)
    }
    loops: list[list[str]] = []
    for start in sorted(edges):
        paths = [[start]]
        seen = {start}
        while paths:
            path = paths.pop()
            following = edges[path[-1]]
            if start in following:
                loops.append(path)
                break
            for node in following:
                if node > start and node not in seen:  # a loop through an earlier node
                    seen.add(node)  # is found from that node
                    paths.append([*path, node])
    return loops


def loop_problem(loop: list[str], where: Mapping[str, str]) -> str:
    """Say what is wrong with ``loop`` in one line, naming where each node is (``where``)."""
    return _problem(
        loop,
        where,
        "'then.node_id': a loop of then: edges",
        "each result would be forwarded for ever; end the chain at a node without then:",
    )


def workflow_loop_problem(loop: list[str], where: Mapping[str, str]) -> str:
    """Say what is wrong with workflow ``loop`` in one line, naming where each node is."""
    return _problem(
        loop,
        where,
        "'workflow.steps': a loop of workflows",
        "each instance would start another for ever; a workflow may be another's step "
        "only where none of its steps leads back to it",
    )


def _problem(loop: list[str], where: Mapping[str, str], what: str, why: str) -> str:
    chain = " -> ".join([*loop, loop[0]])
    places = ", ".join(where[node_id] for node_id in loop)
    return f"{where[loop[0]]}: key {what}, {chain} ({places}): {why}"
