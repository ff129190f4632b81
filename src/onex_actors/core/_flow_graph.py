"""The flow of a runtime, or of a contract tree, as a Mermaid flowchart (pure).

Each hosted node with its kind (and effect family), the command topic it reads, the
result and dead-letter topics it writes, and its edges into other nodes' command topics:
an effect's ``then:``, a reducer's intents, an orchestrator's steps (and their
compensations); a reducer reading other nodes' results (``input.events_of``) has an edge
from their result topics. ``onex contracts graph`` prints it; GitHub and most Markdown viewers draw
a ``mermaid`` block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._contracts import EffectContract, RuntimeHostContract
from ._node_contracts import NodeContract
from ._reducer_contract import ReducerContract
from ._topics import Topic, cmd_topic, dlq_topic, evt_topic
from ._workflow_contract import OrchestratorContract

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
            edges += [
                f"  {box} -- {label} --> {topic(cmd_topic(to))}" for label, to in _sends(node)
            ]
            if isinstance(node, ReducerContract):
                edges += [
                    f"  {topic(evt_topic(source))} -- events --> {box}"
                    for source in node.input.events_of
                ]
    lines += [f'  {box}[/"{name}"/]' for name, box in sorted(topics.items())]
    return "\n".join([*lines, *edges]) + "\n"


def _sends(node: NodeContract) -> list[tuple[str, str]]:
    """Return each command edge out of ``node``: its label and the node it goes to."""
    if isinstance(node, EffectContract):
        return [("then", node.then.node_id)] if node.then is not None else []
    if isinstance(node, ReducerContract):
        targets = dict.fromkeys(intent.node_id for intent in node.intents)
        return [("intent", target) for target in targets]
    if isinstance(node, OrchestratorContract):
        sends = []
        for step in node.workflow.steps:
            sends.append((f"step {step.name}", step.node_id))
            if step.compensate is not None:
                sends.append((f"undo {step.name}", step.compensate.node_id))
        return sends
    return []
