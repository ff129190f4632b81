"""The flow of a runtime, or of a contract tree, as a Mermaid flowchart (pure).

Each hosted node with its kind (and effect family), the command topic it reads, the
result and dead-letter topics it writes, and its ``then:`` edge into the next node's
command topic. ``onex contracts graph`` prints it; GitHub and most Markdown viewers draw
a ``mermaid`` block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._contracts import EffectContract, RuntimeHostContract
from ._node_contracts import NodeContract
from ._topics import Topic, cmd_topic, dlq_topic, evt_topic

__all__ = ["flow_graph"]


def _id(prefix: str, name: str) -> str:
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9]', '_', name)}"


def _label(node: NodeContract) -> str:
    family = f" ({node.effect_type.value})" if isinstance(node, EffectContract) else ""
    return f"{node.kind.value}{family}"


def flow_graph(
    runtimes: Mapping[str, RuntimeHostContract], nodes: Mapping[str, NodeContract]
) -> str:
    """Return the Mermaid flowchart of ``runtimes`` hosting ``nodes`` (one box each)."""
    lines = ["flowchart LR"]
    edges: list[str] = []
    topics: dict[str, str] = {}

    def topic(name: str) -> str:
        parsed = Topic.parse(name)
        topics.setdefault(name, _id(parsed.type, parsed.slug))
        return topics[name]

    for runtime_id in sorted(runtimes):
        hosted = [n for n in runtimes[runtime_id].host_selector.node_ids if n in nodes]
        lines.append(f'  subgraph {_id("r", runtime_id)}["runtime {runtime_id}"]')
        lines += [f'    {_id("n", n)}["{n}<br/>{_label(nodes[n])}"]' for n in hosted]
        lines.append("  end")
        for node_id in hosted:
            node, box = nodes[node_id], _id("n", node_id)
            edges.append(f"  {topic(cmd_topic(node_id))} --> {box}")
            edges.append(f"  {box} --> {topic(evt_topic(node_id))}")
            edges.append(f"  {box} -. dead letters .-> {topic(dlq_topic(node_id))}")
            if isinstance(node, EffectContract) and node.then is not None:
                edges.append(f"  {box} -- then --> {topic(cmd_topic(node.then.node_id))}")
    lines += [f'  {box}[/"{name}"/]' for name, box in sorted(topics.items())]
    return "\n".join([*lines, *edges]) + "\n"
