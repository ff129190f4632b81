"""``PartitionUnit``: one partition a member reads, its lifecycle and commit position (pure).

A partition is *assigned*, then *restoring* (a stateful node reads its state back from
its changelog first; effect nodes hold none, so they serve at once), *serving*,
*revoking* (a rebalance is about to take it: what is done is committed first, where
the delivery strategy commits outside its own rounds) and *revoked*. The unit owns what
the runtime knows of the partition: the records in flight (``core.PartitionOffsets``,
replaced when the partition is read again from its last commit) and the offset last
committed. The bridges only report their client's callbacks as these events
(``PartitionEvents``); the runtime's ``CommitTracker`` holds the units.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from typing import Generic, TypeVar

from ._offsets import PartitionOffsets

__all__ = ["PartitionPhase", "PartitionUnit"]

P = TypeVar("P", bound=Hashable)


class PartitionPhase(enum.Enum):
    """Where a partition is in its lifecycle on this member."""

    ASSIGNED = "assigned"
    RESTORING = "restoring"
    SERVING = "serving"
    REVOKING = "revoking"
    REVOKED = "revoked"


class PartitionUnit(Generic[P]):
    """One partition: its phase, its records in flight and its last committed offset."""

    __slots__ = ("committed", "offsets", "phase", "tp")

    def __init__(self, tp: P) -> None:
        self.tp = tp
        self.phase = PartitionPhase.ASSIGNED
        self.offsets: PartitionOffsets | None = None
        """The records in flight since the partition was last read from its commit."""
        self.committed = -1
        """The offset last committed (-1: none by this member)."""

    def assign(self) -> None:
        """Serve the partition the group gave this member (nothing to restore yet)."""
        self.read_again()
        self.phase = PartitionPhase.SERVING

    def track(self, offset: int) -> PartitionOffsets:
        """Record that the record at ``offset`` was handed on; return what settles it.

        A record at or before the newest offset in flight means the partition is read
        again from its last commit (a rebalance, a seek): what was in flight is void.
        A record of a revoked partition (fetched before it went) is void at once: its
        next owner reads it from the last commit, and nothing of it is committed here.
        """
        if self.phase is PartitionPhase.REVOKED:
            void = PartitionOffsets(offset)
            void.retired = True
            void.start(offset)
            return void
        offsets = self.offsets
        if offsets is None or not _follows(offsets, offset):
            self.read_again()
            offsets = self.offsets = PartitionOffsets(offset)
        offsets.start(offset)
        return offsets

    def due(self) -> int | None:
        """Return the offset to commit now (the first not yet done), if newer than the last."""
        offsets = self.offsets
        if offsets is not None and offsets.committable > self.committed:
            return offsets.committable
        return None

    def revoking(self) -> int | None:
        """Return what may be committed before a rebalance takes the partition."""
        self.phase = PartitionPhase.REVOKING
        return self.due()

    def revoke(self) -> None:
        """Let the partition go: what is in flight is never committed here."""
        self.read_again()
        self.phase = PartitionPhase.REVOKED

    def read_again(self) -> None:
        """Void the records in flight: the partition is read again from its last commit."""
        if self.offsets is not None:
            self.offsets.retired = True
            self.offsets = None

    def in_flight(self) -> int:
        """How many records are in flight."""
        return 0 if self.offsets is None else len(self.offsets)


def _follows(offsets: PartitionOffsets, offset: int) -> bool:
    newest = offsets.last_started
    return offset > (newest if newest is not None else offsets.committable - 1)
