"""The loops a contract tree would run for ever: ``then:`` chains and workflows (pure).

Each node forwards at most one command per result, so the ``then:`` edges form a graph
of out-degree one: a walk from any node either ends or closes a loop. A loop in the
contracts is refused when they are loaded; one that only shows at run time (the same
commands reaching a node again through nodes outside one tree) is cut by the hop count
each forwarded command carries (``HOPS_HEADER``, checked against ``then.max_hops`` by
``forwarded_command``).

A workflow whose step (or compensation) is another workflow starts an instance of it;
workflows that reach themselves that way would nest instances for ever, and are refused
when loaded too. So are loops through reducers: a reducer folds every ``ok`` result of
the nodes its ``input.events_of`` names, and a ``fold`` sends its ``intents`` with every
command it folds, so two reducers folding each other's results, say, would answer each
other for ever (``command_loops``). A state machine's intents belong to transitions,
which its guards and states decide, so they make no such loop by themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ._compute_contract import ComputeContract
from ._contracts import EffectContract
from ._node_contracts import NodeContract
from ._reducer_contract import ReducerContract
from ._workflow_contract import OrchestratorContract

__all__ = [
    "command_loop_problem",
    "command_loops",
    "loop_problem",
    "then_loops",
    "workflow_loop_problem",
    "workflow_loops",
]

_SENDS_BY: Final = {
    "then": "then.node_id",
    "events_of": "input.events_of",
    "intent": "fold.intents",
}
"""Where an edge of ``command_loops`` is declared: the key, in its declaring node."""


def then_loops(nodes: Mapping[str, NodeContract]) -> list[list[str]]:
    """Return each loop of ``then:`` edges among ``nodes``: the node ids along it, in order.

    A loop starts at its first node in sorted order; ``[a]`` is a node forwarding to
    itself. Edges to nodes not in ``nodes`` end their walk.
    """
    edges = {
        node_id: contract.then.node_id
        for node_id, contract in nodes.items()
        if isinstance(contract, EffectContract | ComputeContract) and contract.then is not None
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


def command_loops(nodes: Mapping[str, NodeContract]) -> list[list[tuple[str, str]]]:
    """Return a loop of commands through a reducer among ``nodes``, one per knot of them.

    Its edges: ``then:`` (every ``ok`` answer forwards a command), a reducer's
    ``input.events_of`` (every ``ok`` result of the node it names is folded), and a
    ``fold``'s ``intents`` (sent with every command folded). A knot is a strongly
    connected set of nodes holding an edge other than ``then`` (loops of ``then:`` alone
    are ``then_loops``'): every answer inside it leads back to it, so commands never end.
    For each, one loop through that edge: a list of ``(node, edge to the next node)``, no
    node twice, from its first node in sorted order. Edges to nodes not in ``nodes`` end
    their walk. Linear in the edges: whether one *given* node lies on such a loop is a
    cycle-through-two-points question, NP-hard, so loops are found per knot, not per node.
    """
    edges: dict[str, list[tuple[str, str]]] = {}
    for node_id, contract in nodes.items():
        if isinstance(contract, EffectContract | ComputeContract) and contract.then is not None:
            edges.setdefault(node_id, []).append((contract.then.node_id, "then"))
        if isinstance(contract, ReducerContract):
            for source in contract.input.events_of:
                edges.setdefault(source, []).append((node_id, "events_of"))
            if contract.fold is not None:
                for intent in contract.fold.intents:
                    edges.setdefault(node_id, []).append((intent.node_id, "intent"))
    inside = {
        node: sorted((t, how) for t, how in targets if t in nodes)
        for node, targets in edges.items()
        if node in nodes
    }
    loops: list[list[tuple[str, str]]] = []
    for knot in _strongly_connected(inside):
        crossing = sorted(
            (node, target, how)
            for node in knot
            for target, how in inside.get(node, ())
            if target in knot and how != "then"
        )
        if crossing:
            node, target, how = crossing[0]
            back = _shortest_path(target, node, inside, knot)
            loops.append(_from_first([(node, how), *back]))
    return sorted(loops)


def _strongly_connected(edges: Mapping[str, list[tuple[str, str]]]) -> list[set[str]]:
    """Return the strongly connected sets of ``edges``' graph (Tarjan's, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    nodes = sorted({*edges, *(t for targets in edges.values() for t, _ in targets)})
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(edges.get(root, ())))]
        while work:
            node, following = work[-1]
            for target, _ in following:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(edges.get(target, ()))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    knot: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        knot.add(member)
                        if member == node:
                            break
                    found.append(knot)
    return found


def _shortest_path(
    start: str, end: str, edges: Mapping[str, list[tuple[str, str]]], within: set[str]
) -> list[tuple[str, str]]:
    """Return the fewest ``(node, edge)`` steps from ``start`` to ``end`` inside ``within``.

    Each step is a node left and the edge it is left by; ``end`` itself is not listed.
    A path of fewest steps passes no node twice. ``end`` must be reachable.
    """
    came: dict[str, tuple[str, str]] = {}
    frontier = [start]
    seen = {start}
    while end not in seen:
        following = []
        for node in frontier:
            for target, how in edges.get(node, ()):
                if target in within and target not in seen:
                    seen.add(target)
                    came[target] = (node, how)
                    following.append(target)
        frontier = following
    steps: list[tuple[str, str]] = []
    node = end
    while node != start:
        previous, how = came[node]
        steps.append((previous, how))
        node = previous
    return steps[::-1]


def _from_first(loop: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Rotate ``loop`` (``(node, edge to the next)``) to start at its first node in order."""
    first = min(range(len(loop)), key=lambda i: loop[i][0])
    return loop[first:] + loop[:first]


def command_loop_problem(loop: list[tuple[str, str]], where: Mapping[str, str]) -> str:
    """Say what is wrong with command ``loop`` in one line, naming where each node is.

    It is said at the node that declares the loop's first edge other than ``then``.
    """
    nodes = [node for node, _ in loop]
    index = next(i for i, (_, how) in enumerate(loop) if how != "then")
    source, how = loop[index]
    declarer = nodes[(index + 1) % len(nodes)] if how == "events_of" else source
    chain = " ".join(f"{node} -{how}->" for node, how in loop) + f" {nodes[0]}"
    places = ", ".join(where[node_id] for node_id in nodes)
    return (
        f"{where[declarer]}: key '{_SENDS_BY[how]}': a loop of commands, {chain} ({places}): "
        "each answer would make the next command for ever; end the loop at a node that "
        "sends nothing on"
    )


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
