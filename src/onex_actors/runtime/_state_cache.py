"""State records held back until a flush, so each key's changelog gets its newest state once.

A compacted changelog keeps only the newest record of each key, and a restore reads only
that one: a state record that a newer one of the same topic, partition and key follows
before either is sent carries nothing the newer one does not. The outbox holds state
records here, one per slot (topic, partition, key), and sends what it holds at a flush:
at least once, at each commit (Kafka Streams' record cache, flushed at each commit), or
at the end of each list published when records are not held across lists. Whoever
waited for a replaced record's acknowledgement waits for its successor's instead, and a
failure of the record sent runs every replaced record's fallback, so each command whose
state went into it is answered with the failure.

A held record of a partition its node no longer serves (revoked: read again from its
last commit elsewhere, its commands never committed here) is dropped at the flush, not
sent: its key's state moves on with the partition, and a late write could follow the
new owner's. Which partitions each changelog's node serves is registered in ``served``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Container
from typing import Final

from ._ports import AckCallback, OutboundRecord

__all__ = ["MAX_HELD_BYTES", "Fallback", "StateCache"]

MAX_HELD_BYTES: Final = 16 * 1024 * 1024
"""Bytes of keys and values held before the outbox flushes without waiting for a commit."""

Fallback = Callable[[BaseException], Awaitable[None]]
"""Replaces a record the bus failed to produce; called with the failure."""


class _Held:
    """The newest state record of one slot, with everyone who waits for it."""

    __slots__ = ("acks", "fallbacks", "record")

    def __init__(
        self, record: OutboundRecord, on_ack: AckCallback | None, fallback: Fallback | None
    ) -> None:
        self.record = record
        self.acks = [on_ack]
        self.fallbacks = [fallback]


class StateCache:
    """The state records held by an outbox, one per topic, partition and key."""

    def __init__(self, replaced: Counter[str] | None = None) -> None:
        self._held: dict[tuple[str, int | None, bytes | None], _Held] = {}
        self.bytes = 0
        """Bytes of the values held."""
        self.replaced: Counter[str] = replaced if replaced is not None else Counter()
        """Records replaced by a newer one of their slot before they were sent, per topic."""
        self.served: dict[str, Container[int]] = {}
        """Per changelog topic, the partitions its node serves here (live: a set the
        node's store keeps); a record of another partition is dropped at the flush."""
        self.voided = 0
        """Records dropped at a flush: their partition was no longer served here."""

    def __len__(self) -> int:
        """Return how many records are held."""
        return len(self._held)

    def hold(
        self, record: OutboundRecord, on_ack: AckCallback | None, fallback: Fallback | None
    ) -> None:
        """Hold ``record`` in place of any older one of its slot."""
        slot = (record.topic, record.partition, record.key)
        size = _size(record)
        held = self._held.get(slot)
        if held is None:
            self._held[slot] = _Held(record, on_ack, fallback)
            self.bytes += size
            return
        self.bytes += size - _size(held.record)
        self.replaced[record.topic] += 1
        held.record = record
        held.acks.append(on_ack)
        held.fallbacks.append(fallback)

    def take(
        self,
    ) -> tuple[list[OutboundRecord], list[AckCallback | None], list[Fallback | None]]:
        """Return and forget every record held of a partition still served here.

        Each with one acknowledgement callback and one fallback standing for everyone
        who waits for it.
        """
        records: list[OutboundRecord] = []
        acks: list[AckCallback | None] = []
        fallbacks: list[Fallback | None] = []
        served = self.served
        for (topic, partition, _), held in self._held.items():
            partitions = served.get(topic)
            if partitions is not None and partition not in partitions:
                self.voided += 1
                continue
            records.append(held.record)
            acks.append(_each_ack(held.acks))
            fallbacks.append(_each_fallback(held.fallbacks))
        self._held = {}
        self.bytes = 0
        return records, acks, fallbacks


def _size(record: OutboundRecord) -> int:
    return len(record.value or b"")


def _each_ack(acks: list[AckCallback | None]) -> AckCallback | None:
    if len(acks) == 1:
        return acks[0]
    waiting = [on_ack for on_ack in acks if on_ack is not None]

    def acknowledged(error: BaseException | None) -> None:
        for on_ack in waiting:
            on_ack(error)

    return acknowledged


def _each_fallback(fallbacks: list[Fallback | None]) -> Fallback | None:
    """One fallback running each in turn; none (the record is lost if it fails) if any is none."""
    if len(fallbacks) == 1:
        return fallbacks[0]
    if any(fallback is None for fallback in fallbacks):
        return None
    each = [fallback for fallback in fallbacks if fallback is not None]

    async def replaced(error: BaseException) -> None:
        for fallback in each:
            await fallback(error)

    return replaced
