"""Flows chained by ``then:``: the loops a contract tree would run for ever (pure).

Each node forwards at most one command per result, so the ``then:`` edges form a graph
of out-degree one: a walk from any node either ends or closes a loop. A loop in the
contracts is refused when they are loaded; one that only shows at run time (the same
commands reaching a node again through nodes outside one tree) is cut by the hop count
each forwarded command carries (``HOPS_HEADER``, checked against ``then.max_hops`` by
``forwarded_command``).
"""

from __future__ import annotations

from collections.abc import Mapping

from ._contracts import EffectContract
from ._node_contracts import NodeContract

__all__ = ["loop_problem", "then_loops"]


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


def loop_problem(loop: list[str], where: Mapping[str, str]) -> str:
    """Say what is wrong with ``loop`` in one line, naming where each node is (``where``)."""
    chain = " -> ".join([*loop, loop[0]])
    places = ", ".join(where[node_id] for node_id in loop)
    return (
        f"{where[loop[0]]}: key 'then.node_id': a loop of then: edges, {chain} ({places}): "
        "each result would be forwarded for ever; end the chain at a node without then:"
    )
