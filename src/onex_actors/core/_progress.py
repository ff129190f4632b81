"""Telling a stuck consumer from an idle or paused one, by progress (pure).

A consumer can be alive, polling and healthy while a partition's records wait and
nothing is read (the kafka-python defects our bridge repairs all looked so). A
partition is *stalled* when it has records waiting (its read position is behind the
end of its log), it is not paused, and its position has not moved for ``stall_after_s``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, NamedTuple, TypeVar

__all__ = ["ProgressWatch", "Stall"]

P = TypeVar("P", bound=Hashable)


class Stall(NamedTuple, Generic[P]):
    """A partition with records waiting and no progress since ``since``."""

    partition: P
    position: int
    end: int
    since: float


class _Seen(NamedTuple):
    position: int
    end: int
    progress_at: float


class ProgressWatch(Generic[P]):
    """Per-partition read positions over time; see the module docstring."""

    def __init__(self, stall_after_s: float) -> None:
        self.stall_after_s = stall_after_s
        self._seen: dict[P, _Seen] = {}

    def observe(self, partition: P, position: int, end: int, *, paused: bool, now: float) -> None:
        """Record ``partition``'s read ``position`` and log ``end`` at ``now``.

        Being paused, having nothing to read, or having moved counts as progress.
        """
        seen = self._seen.get(partition)
        moved = seen is None or position != seen.position
        at = now if paused or position >= end or moved else seen.progress_at  # type: ignore[union-attr]
        self._seen[partition] = _Seen(position, end, at)

    def forget(self, keep: set[P]) -> None:
        """Drop every partition not in ``keep`` (it was revoked)."""
        for partition in [p for p in self._seen if p not in keep]:
            del self._seen[partition]

    def stalled(self, now: float) -> list[Stall[P]]:
        """Return the partitions stalled at ``now``."""
        return [
            Stall(partition, seen.position, seen.end, seen.progress_at)
            for partition, seen in self._seen.items()
            if seen.position < seen.end and now - seen.progress_at >= self.stall_after_s
        ]
