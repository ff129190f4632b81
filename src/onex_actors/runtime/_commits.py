"""``CommitTracker``: the one commit rule, for every bus adapter, over partition units.

Per partition, a record's offset may be committed only once it and every record
before it are done (their results acknowledged). The tracker holds a ``PartitionUnit``
per partition the consumer reads, learns each consumed record, hands back a mark the
record's slice settles when done, and says what is due for commit: never past the
lowest unfinished offset of a partition. It takes the consumer's partition events
(``PartitionEvents``): assigned, revoking (what is done is committed first, when the
delivery strategy says so), revoked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import trio

from onex_actors.core import BusError, PartitionOffsets, PartitionPhase, PartitionUnit

from ._ports import BusConsumer, PartitionFollower, Record, TopicPartition

__all__ = ["CommitTracker", "OffsetMarks"]

logger = logging.getLogger("onex_actors.runtime")

OffsetMarks = list[tuple[PartitionOffsets, int]]
"""What settles a slice's records: each record's partition tracker and offset."""


class CommitTracker:
    """The partition units of every partition a consumer reads, and what may be committed."""

    def __init__(self, *, commit_before_revoke: bool = True) -> None:
        self.commit_before_revoke = commit_before_revoke
        """Whether a partition about to be revoked has its done offset committed first
        (the at-least-once strategy's rule; exactly-once commits only in transactions)."""
        self._units: dict[tuple[str, int], PartitionUnit[TopicPartition]] = {}
        self.committing: dict[TopicPartition, int] = {}
        """The offsets of a transaction's commit while it is under way."""
        self.commits = 0
        """Commits the bus took."""
        self._round = trio.Event()
        self._done_more = trio.Event()
        self.failed_commits = 0
        self._failing = 0
        """Commits refused in a row (said on the first and every 60th)."""
        self.followers: list[PartitionFollower] = []
        """Told of each assignment, commit, read-again and revocation (keyed state)."""

    # -- partition events (PartitionEvents) -------------------------------------------

    def assigned(self, partitions: Sequence[TopicPartition]) -> None:
        """Serve ``partitions``: the group gave them to this member."""
        for tp in partitions:
            self._unit(tp).assign()
        for follower in self.followers:
            follower.assigned(partitions)

    def revoking(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """``partitions`` are about to go: return the offsets to commit before they do."""
        done: dict[TopicPartition, int] = {}
        for tp in partitions:
            unit = self._units.get((tp.topic, tp.partition))
            if unit is None:
                continue
            offset = unit.revoking()
            if offset is not None and self.commit_before_revoke:
                done[tp] = offset
        return done

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """``partitions`` went: their records in flight are never committed here."""
        for tp in partitions:
            unit = self._units.get((tp.topic, tp.partition))
            if unit is not None:
                unit.revoke()
        for follower in self.followers:
            follower.revoked(partitions)

    def phase(self, tp: TopicPartition) -> PartitionPhase | None:
        """Where ``tp`` is in its lifecycle here (None: never seen)."""
        unit = self._units.get((tp.topic, tp.partition))
        return None if unit is None else unit.phase

    # -- records ----------------------------------------------------------------------

    def track(self, records: Iterable[Record]) -> OffsetMarks:
        """Record that ``records`` were handed to the runtime; return their marks.

        A record at or before the newest offset in flight on its partition means the
        partition was read again from its last commit (a rebalance, a seek): what was
        in flight there is being fetched again, so the partition starts afresh. Marks
        of the old tracker still settle harmlessly, on a tracker no longer committed and
        retired (a transaction carries none of its outputs: they are answered again).
        """
        marks: OffsetMarks = []
        units = self._units
        last: tuple[str, int] | None = None
        unit: PartitionUnit[TopicPartition] | None = None
        for record in records:
            key = (record.topic, record.partition)
            if key != last or unit is None:  # a poll's records come partition by partition
                last, unit = key, units.get(key)
                if unit is None:  # a bus that reports no assignment (in-process)
                    unit = units[key] = PartitionUnit(record.topic_partition)
                    unit.assign()
            marks.append((unit.track(record.offset), record.offset))
        return marks

    @staticmethod
    def settle(marks: OffsetMarks) -> None:
        """Record that the records behind ``marks`` are done."""
        for offsets, offset in marks:
            offsets.done(offset)

    def done(self, marks: OffsetMarks) -> None:
        """Record that the records behind ``marks`` are done; wake :meth:`wait_done`."""
        self.settle(marks)
        self._done_more.set()

    async def wait_done(self) -> None:
        """Wait until more records are done (through :meth:`done`)."""
        self._done_more = trio.Event()
        await self._done_more.wait()

    def due(self) -> dict[TopicPartition, int]:
        """Offsets to commit now: per partition, the first offset not yet done, if newer."""
        due: dict[TopicPartition, int] = {}
        for unit in self._units.values():
            offset = unit.due()
            if offset is not None:
                due[unit.tp] = offset
        return due

    def committed_offsets(self) -> dict[TopicPartition, int]:
        """Return the offsets committed so far, per partition."""
        return {unit.tp: unit.committed for unit in self._units.values() if unit.committed >= 0}

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Record that ``offsets`` were committed."""
        for tp, offset in offsets.items():
            unit = self._unit(tp)
            unit.committed = max(unit.committed, offset)
        for follower in self.followers:
            follower.committed(offsets)

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
            self._failing += 1
            if self._failing == 1 or self._failing % 60 == 0:  # once, then once a minute-ish
                logger.warning(
                    "commit of %d partitions failed, trying again at the next commit "
                    "(records past the last commit may be handled again): %s (%d in a row)",
                    len(due),
                    exc,
                    self._failing,
                )
            return False
        self._failing = 0
        self.committed(due)
        self.commits += 1
        return True

    def uncommitted(self, records: Sequence[Record]) -> Sequence[Record]:
        """Return ``records`` without those below the offset committed of their partition.

        Offsets of a commit under way count as committed: a record read again while it
        is on its way was answered in it (if that commit fails, everything past the last
        commit is read again after it, and this filter has forgotten it by then).
        """
        floor = self.committed_offsets()
        floor.update(self.committing)
        if not floor or all(r.offset >= floor.get(r.topic_partition, 0) for r in records):
            return records
        return [r for r in records if r.offset >= floor.get(r.topic_partition, 0)]

    def retire_all(self) -> None:
        """Forget every partition's records in flight: they are read again.

        From the last commit (a transaction aborted, a rebalance); what settles later
        settles nothing.
        """
        for unit in self._units.values():
            unit.read_again()
        for follower in self.followers:
            follower.read_again(None)

    def retire_except(self, owned: frozenset[TopicPartition]) -> None:
        """Revoke the partitions not in ``owned``: their records belong to another member."""
        gone = []
        for unit in self._units.values():
            if unit.tp not in owned and unit.offsets is not None:
                unit.revoke()
                gone.append(unit.tp)
        for follower in self.followers:
            follower.revoked(gone)

    def idle(self) -> bool:
        """Whether no record of any partition is in flight (everything read is done)."""
        return all(unit.in_flight() == 0 for unit in self._units.values())

    def in_flight(self, tp: TopicPartition) -> int:
        """How many records of ``tp`` are in flight."""
        unit = self._units.get((tp.topic, tp.partition))
        return 0 if unit is None else unit.in_flight()

    def _unit(self, tp: TopicPartition) -> PartitionUnit[TopicPartition]:
        unit = self._units.get((tp.topic, tp.partition))
        if unit is None:
            unit = self._units[(tp.topic, tp.partition)] = PartitionUnit(tp)
        return unit
