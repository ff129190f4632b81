"""Where a hosted node's command partitions resume when a runtime starts (pure).

Each runtime is a consumer group of its own, so a node that moves to another runtime
would start in a group with no committed offsets for its command topic and, reading
from the earliest retained record, answer its whole history again. Before the host
joins its group, the runtime looks at what every group of the cluster has committed on
the command topics of the nodes it hosts, and this decides, per partition:

- the furthest offset any group committed wins: every record before it was answered
  (a commit comes only after its records' results are acknowledged), so starting there
  loses nothing and repeats nothing another runtime already answered;
- where the runtime's own group is behind it (the node was hosted elsewhere since),
  that offset is committed into its group before it joins;
- where no group ever committed, the node's ``start_from`` applies: ``earliest`` reads
  what was sent before any runtime hosted it (a node's first start on a fresh cluster),
  ``latest`` starts at the log end.

Another group that is live *and* reads the node's command topic hosts the node now: two
runtimes would both answer every command, so the host refuses to start, naming it,
unless the node is declared ``fan_out`` (every runtime answers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import attrs

__all__ = ["NodeTopic", "ResumePlan", "ResumePoint", "plan_resume"]

Partition = tuple[str, int]
"""A topic and partition number."""


@attrs.frozen
class NodeTopic:
    """A hosted node's command topic and how it starts where nothing was committed."""

    node_id: str
    topic: str
    partitions: int
    start_from: Literal["earliest", "latest"] = "earliest"
    fan_out: bool = False
    """Every runtime hosting the node answers it (its own offsets, no hand-over)."""


@attrs.frozen
class ResumePoint:
    """Where one partition of a node's command topic resumes, and why."""

    node_id: str
    topic: str
    partition: int
    offset: int | None
    """The offset read first; None: the consumer's reset (the log start)."""
    source: str
    """``own group``, ``group <id>`` (handed over), ``log end (start_from: latest)``
    or ``log start, nothing committed``."""


@attrs.frozen
class ResumePlan:
    """The resume point of every partition, and what to commit into the own group first."""

    points: tuple[ResumePoint, ...]
    commit: Mapping[Partition, int]
    """Offsets to commit into the runtime's own group before it joins."""
    conflicts: Mapping[str, tuple[str, ...]]
    """Per node, the other live groups that read its command topic now."""

    def by_node(self) -> dict[str, list[ResumePoint]]:
        """Return the points of each node, by partition."""
        nodes: dict[str, list[ResumePoint]] = {}
        for point in self.points:
            nodes.setdefault(point.node_id, []).append(point)
        return nodes


def plan_resume(
    nodes: Sequence[NodeTopic],
    own: Mapping[Partition, int],
    others: Mapping[str, Mapping[Partition, int]],
    *,
    ends: Mapping[Partition, int],
    live_readers: Mapping[str, frozenset[str]],
) -> ResumePlan:
    """Decide where each hosted node's command partitions resume.

    ``own``: the runtime's group's committed offsets; ``others``: each other group's;
    ``ends``: the log end offsets; ``live_readers``: per topic, the other groups with
    live members that read it.
    """
    points: list[ResumePoint] = []
    commit: dict[Partition, int] = {}
    conflicts: dict[str, tuple[str, ...]] = {}
    for node in nodes:
        readers = live_readers.get(node.topic, frozenset())
        if readers and not node.fan_out:
            conflicts[node.node_id] = tuple(sorted(readers))
        for partition in range(node.partitions):
            key = (node.topic, partition)
            point = _point(node, key, own, {} if node.fan_out else others, ends)
            points.append(point)
            if point.offset is not None and point.source != "own group":
                commit[key] = point.offset
    return ResumePlan(tuple(points), commit, conflicts)


def _point(
    node: NodeTopic,
    key: Partition,
    own: Mapping[Partition, int],
    others: Mapping[str, Mapping[Partition, int]],
    ends: Mapping[Partition, int],
) -> ResumePoint:
    topic, partition = key
    best_group, best = None, own.get(key, -1)
    for group in sorted(others):
        offset = others[group].get(key, -1)
        if offset > best:
            best_group, best = group, offset
    if best_group is not None:
        return ResumePoint(node.node_id, topic, partition, best, f"group {best_group}")
    if best >= 0:
        return ResumePoint(node.node_id, topic, partition, best, "own group")
    if node.start_from == "latest":
        end = ends.get(key, 0)
        return ResumePoint(node.node_id, topic, partition, end, "log end (start_from: latest)")
    return ResumePoint(node.node_id, topic, partition, None, "log start, nothing committed")
