"""``CommitTracker``: the one commit rule, for every bus adapter.

Per partition, a record's offset may be committed only once it and every record
before it are done (their results acknowledged). The tracker learns each consumed
record, hands back a mark the record's slice settles when done, and says what is due
for commit: never past the lowest unfinished offset of a partition.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import trio

from onex_actors.core import BusError, PartitionOffsets

from ._ports import BusConsumer, Record, TopicPartition

__all__ = ["CommitTracker", "OffsetMarks"]

logger = logging.getLogger("onex_actors.runtime")

OffsetMarks = list[tuple[PartitionOffsets, int]]
"""What settles a slice's records: each record's partition tracker and offset."""


class CommitTracker:
    """In-flight offsets of every partition a consumer reads, and what may be committed."""

    def __init__(self) -> None:
        self._partitions: dict[tuple[str, int], PartitionOffsets] = {}
        self._committed: dict[TopicPartition, int] = {}
        self.committing: dict[TopicPartition, int] = {}
        """The offsets of a transaction's commit while it is under way."""
        self.commits = 0
        """Commits the bus took."""
        self._round = trio.Event()
        self.failed_commits = 0

    def track(self, records: Iterable[Record]) -> OffsetMarks:
        """Record that ``records`` were handed to the runtime; return their marks.

        A record at or before the newest offset in flight on its partition means the
        partition was read again from its last commit (a rebalance, a seek): what was
        in flight there is being fetched again, so the partition starts afresh. Marks
        of the old tracker still settle harmlessly, on a tracker no longer committed and
        retired (a transaction carries none of its outputs: they are answered again).
        """
        marks: OffsetMarks = []
        partitions = self._partitions
        last: tuple[str, int] | None = None
        offsets: PartitionOffsets | None = None
        for record in records:
            key = (record.topic, record.partition)
            if key != last or offsets is None:  # a poll's records come partition by partition
                last, offsets = key, partitions.get(key)
            offset = record.offset
            if offsets is None or not _follows(offsets, offset):
                if offsets is not None:
                    offsets.retired = True  # read again: what it tracks is void
                offsets = partitions[key] = PartitionOffsets(offset)
            offsets.start(offset)
            marks.append((offsets, offset))
        return marks

    @staticmethod
    def settle(marks: OffsetMarks) -> None:
        """Record that the records behind ``marks`` are done."""
        for offsets, offset in marks:
            offsets.done(offset)

    def due(self) -> dict[TopicPartition, int]:
        """Offsets to commit now: per partition, the first offset not yet done, if newer."""
        committed = self._committed
        due: dict[TopicPartition, int] = {}
        for (topic, partition), offsets in self._partitions.items():
            tp = TopicPartition(topic, partition)
            if offsets.committable > committed.get(tp, -1):
                due[tp] = offsets.committable
        return due

    def done_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Return what of ``partitions`` may be committed now (a ``DoneOffsets``)."""
        committed = self._committed
        done: dict[TopicPartition, int] = {}
        for tp in partitions:
            offsets = self._partitions.get((tp.topic, tp.partition))
            if offsets is not None and offsets.committable > committed.get(tp, -1):
                done[tp] = offsets.committable
        return done

    def committed_offsets(self) -> dict[TopicPartition, int]:
        """Return the offsets committed so far, per partition."""
        return dict(self._committed)

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Record that ``offsets`` were committed."""
        self._committed.update(offsets)

    async def commit(self, consumer: BusConsumer) -> bool:
        """Commit what is due through ``consumer``; return whether the bus took it.

        A commit the bus refuses (the group rebalanced while the broker was away, the
        coordinator moved) is logged and tried again at the next commit: records past
        the last commit may then be handled twice, never lost.
        """
        try:
            return await self._commit(consumer)
        finally:
            self.end_round()

    def end_round(self) -> None:
        """Wake those waiting in :meth:`next_round` (a commit, of any kind, has finished)."""
        self._round.set()
        self._round = trio.Event()

    async def next_round(self) -> None:
        """Wait until the next call of :meth:`commit` has finished (it may commit nothing)."""
        await self._round.wait()

    async def _commit(self, consumer: BusConsumer) -> bool:
        due = self.due()
        if not due:
            await trio.lowlevel.checkpoint()
            return True
        try:
            await consumer.commit(due)
        except BusError as exc:
            self.failed_commits += 1
            logger.warning(
                "commit of %d partitions failed, trying again at the next commit "
                "(records past the last commit may be handled again): %s",
                len(due),
                exc,
            )
            return False
        self.committed(due)
        self.commits += 1
        return True

    def uncommitted(self, records: Sequence[Record]) -> Sequence[Record]:
        """Return ``records`` without those below the offset committed of their partition.

        Offsets of a commit under way count as committed: a record read again while it
        is on its way was answered in it (if that commit fails, everything past the last
        commit is read again after it, and this filter has forgotten it by then).
        """
        floor = {**self._committed, **self.committing} if self.committing else self._committed
        if not floor or all(r.offset >= floor.get(r.topic_partition, 0) for r in records):
            return records
        return [r for r in records if r.offset >= floor.get(r.topic_partition, 0)]

    def retire_all(self) -> None:
        """Forget every partition's records in flight: they are read again.

        From the last commit (a transaction aborted, a rebalance); what settles later
        settles nothing.
        """
        for offsets in self._partitions.values():
            offsets.retired = True
        self._partitions.clear()

    def retire_except(self, owned: frozenset[TopicPartition]) -> None:
        """Retire the partitions not in ``owned``: their records belong to another member."""
        for key in [key for key in self._partitions if TopicPartition(*key) not in owned]:
            self._partitions.pop(key).retired = True

    def in_flight(self, tp: TopicPartition) -> int:
        """How many records of ``tp`` are in flight."""
        offsets = self._partitions.get((tp.topic, tp.partition))
        return 0 if offsets is None else len(offsets)


def _follows(offsets: PartitionOffsets, offset: int) -> bool:
    newest = offsets.last_started
    return offset > (newest if newest is not None else offsets.committable - 1)
