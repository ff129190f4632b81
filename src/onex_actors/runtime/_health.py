"""Health reports of node actors and of the runtime."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

__all__ = ["NodeHealth", "NodeStatus", "RuntimeHealth"]


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
