"""Watching a consumer's progress: records waiting and nothing read means it is stuck."""

from __future__ import annotations

import time
from typing import Protocol

from onex_actors.core import BusError, ProgressWatch
from onex_actors.runtime import TopicPartition

from ._consumer_client import Progress

__all__ = ["StallWatch"]


class _Reads(Protocol):
    def assignment(self) -> set[TopicPartition]: ...

    def progress(
        self, partitions: set[TopicPartition]
    ) -> dict[TopicPartition, Progress] | None: ...


class StallWatch:
    """Checks, every quarter of ``stall_timeout_s``, that no partition is stuck.

    Called from the consumer thread after each fetch (so nothing fetched is held back
    by it), for either client; the verdict itself is the pure ``core.ProgressWatch``.
    """

    def __init__(self, group_id: str, stall_timeout_s: float) -> None:
        self.group_id = group_id
        self.stall_timeout_s = stall_timeout_s
        self._progress: ProgressWatch[TopicPartition] = ProgressWatch(stall_timeout_s)
        self._next_check = 0.0

    def check(self, client: _Reads, paused: set[TopicPartition]) -> None:
        """Raise ``BusError`` if an assigned, unpaused partition has lag and no progress."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + max(0.5, self.stall_timeout_s / 4)
        assigned = client.assignment()
        self._progress.forget(assigned)
        if not assigned:
            return
        progress = client.progress(assigned)
        if progress is None:  # the broker is away: no verdict this time
            return
        for tp, seen in progress.items():
            self._progress.observe(tp, seen.position, seen.end, paused=tp in paused, now=now)
        stalls = self._progress.stalled(now)
        if stalls:
            described = "; ".join(
                f"{s.partition.topic} partition {s.partition.partition}: "
                f"{s.end - s.position} records waiting from offset {s.position}"
                for s in stalls
            )
            raise BusError(
                f"Kafka consumer of group {self.group_id!r} is stuck: nothing read for "
                f"{self.stall_timeout_s:g} s while records wait ({described}). Stopping "
                "rather than stalling silently; a restart resumes from the last commit",
                reason="consumer_stalled",
            )
