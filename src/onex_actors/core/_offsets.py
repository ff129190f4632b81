"""At-least-once commit tracking for one partition (pure).

A record's offset may be committed only once it and every record before it on its
partition are done (their evt or dlq acknowledged). ``PartitionOffsets`` keeps the
in-flight offsets in arrival order and advances the commit point past the done prefix.
"""

from __future__ import annotations

from collections import deque

__all__ = ["PartitionOffsets"]


class PartitionOffsets:
    """In-flight offsets of one partition, and how far it is safe to commit."""

    def __init__(self, committed: int = 0) -> None:
        self._in_flight: deque[int] = deque()
        self._done: set[int] = set()
        self.committable = committed
        """Kafka-style commit position: the offset of the next record not yet done."""
        self.retired = False
        """Set when the partition's records are read again from its last commit (a
        transaction aborted, a rebalance): nothing tracked here is committed any more."""

    def __len__(self) -> int:
        return len(self._in_flight)

    def start(self, offset: int) -> None:
        """Record that ``offset`` was handed to the runtime. Offsets must increase."""
        if self._in_flight and offset <= self._in_flight[-1]:
            raise ValueError(f"offset {offset} is not after in-flight offset {self._in_flight[-1]}")
        if not self._in_flight:
            self.committable = max(self.committable, offset)
        self._in_flight.append(offset)

    @property
    def last_started(self) -> int | None:
        """The newest offset handed to the runtime, if any is in flight."""
        return self._in_flight[-1] if self._in_flight else None

    def done(self, offset: int) -> None:
        """Record that ``offset`` is fully handled; advance the commit point if possible.

        An offset that is not in flight (already done, or never started) is ignored.
        """
        if offset < self.committable or offset in self._done:
            return
        self._done.add(offset)
        while self._in_flight and self._in_flight[0] in self._done:
            finished = self._in_flight.popleft()
            self._done.discard(finished)
            self.committable = finished + 1

    def covers(self, offset: int) -> bool:
        """Whether ``offset`` lies in the done prefix of a partition still read here."""
        return offset < self.committable and not self.retired

    @property
    def lowest_in_flight(self) -> int | None:
        """The oldest offset not yet done, if any."""
        return self._in_flight[0] if self._in_flight else None
