"""Health reports of node actors and of the runtime."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

__all__ = [
    "DURATION_BUCKETS_S",
    "STEP_BUCKETS_S",
    "Durations",
    "NodeHealth",
    "NodeStatus",
    "RuntimeHealth",
]

DURATION_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Upper bounds of the handler-duration histogram, in seconds (then ``+Inf``)."""

STEP_BUCKETS_S = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
"""Upper bounds of the workflow-step histogram, in seconds: a step crosses a topic twice
and may call a model, so its range reaches minutes."""


class Durations:
    """A histogram of handler call durations: counts per bucket, their sum and count.

    Kept by the actor itself (a list increment per call) and read by the metrics
    endpoint at scrape time, so a host without a listener pays next to nothing.
    """

    def __init__(self, buckets: tuple[float, ...] = DURATION_BUCKETS_S) -> None:
        self.buckets = buckets
        """Upper bounds, in seconds (then ``+Inf``)."""
        self.counts = [0] * (len(buckets) + 1)
        """Calls per bucket (not cumulative); the last one is ``+Inf``."""
        self.sum_s = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        """Record one call that took ``seconds``."""
        self.sum_s += seconds
        self.count += 1
        for index, bound in enumerate(self.buckets):
            if seconds <= bound:
                self.counts[index] += 1
                return
        self.counts[-1] += 1


class NodeStatus(enum.StrEnum):
    """Where a node actor is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"


@attrs.frozen
class NodeHealth:
    """One node's health: status, restarts and counters."""

    node_id: str
    status: NodeStatus
    healthy: bool
    restarts: int
    inbox_depth: int
    in_flight: int
    handled_ok: int
    handled_error: int
    dead_letters: int
    duplicates_skipped: int
    last_error: str | None


@attrs.frozen
class RuntimeHealth:
    """The runtime's health: healthy when every node is."""

    runtime_id: str
    nodes: Mapping[str, NodeHealth]

    @property
    def healthy(self) -> bool:
        """Whether every node is healthy."""
        return all(node.healthy for node in self.nodes.values())

    def as_json(self) -> dict[str, object]:
        """Return the report as JSON-ready data."""
        return {
            "runtime_id": self.runtime_id,
            "healthy": self.healthy,
            "nodes": {
                node_id: {
                    k: (v.value if isinstance(v, enum.Enum) else v)
                    for k, v in attrs.asdict(node).items()
                }
                for node_id, node in self.nodes.items()
            },
        }
