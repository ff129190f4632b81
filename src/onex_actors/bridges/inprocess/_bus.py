"""The in-process bus: topics, partitions and consumer groups in memory, no broker.

It implements the same ``Bus`` port as the Kafka bridge, with the same delivery
semantics: records are kept in partitioned logs and a consumer group resumes from its
committed offsets (which the runtime's commit tracker decides, as for Kafka). It is for
embedding and fast tests; it never stands in for Kafka in a test of Kafka behaviour.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from itertools import count

import trio

from onex_actors.core import TopicPattern, home_partition
from onex_actors.runtime import BatchAck, OutboundRecord, PartitionEvents, Record, TopicPartition

__all__ = ["InProcessBus", "InProcessConsumer"]

_Stored = tuple[bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...]]
"""A record in a log: key, value, headers (topic, partition and offset are its place)."""


class InProcessBus:
    """A partitioned, in-memory log with consumer groups."""

    def __init__(self, *, partitions: int = 4) -> None:
        if partitions < 1:
            raise ValueError("an in-process bus needs at least one partition per topic")
        self.partitions = partitions
        self._logs: dict[str, list[list[_Stored]]] = {}
        """Per topic and partition, each record as a tuple of plain values: the garbage
        collector stops tracking such tuples, so a long log costs it nothing."""
        self._committed: dict[str, dict[TopicPartition, int]] = {}
        self._members: dict[str, list[InProcessConsumer]] = {}
        self._generation = 0
        self._member_ids = count()
        self._arrived = trio.Event()

    # -- the Bus port ---------------------------------------------------------------

    @asynccontextmanager
    async def consumer(
        self,
        patterns: Sequence[TopicPattern],
        group_id: str,
        *,
        partitions: PartitionEvents | None = None,
    ) -> AsyncIterator[InProcessConsumer]:
        """Join ``group_id``; partitions are shared among the group's members.

        At every rebalance, what each member's ``partitions.revoking`` returns for its
        partitions is committed first; a member reports what it reads anew and what it
        lost when it next looks at its assignment.
        """
        member = InProcessConsumer(self, tuple(patterns), group_id, next(self._member_ids))
        member.events = partitions
        self._members.setdefault(group_id, []).append(member)
        self._rebalanced([group_id])
        try:
            yield member
        finally:
            self._members[group_id].remove(member)
            self._rebalanced([group_id])

    def record_limit(self, topic: str) -> int | None:
        """No limit: records stay in memory (the envelope limit still applies)."""
        return None

    def unreachable(self) -> str | None:
        """Never: there is no broker."""
        return None

    async def publish(
        self, records: Sequence[OutboundRecord], on_ack: BatchAck | None = None
    ) -> None:
        """Append ``records`` to their partitions (given, or Kafka's by key); acknowledge them.

        Either all are appended or the call is cancelled, never both.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        partitions = self.partitions
        touched: set[tuple[str, int]] = set()
        for record in records:
            logs = self._logs.get(record.topic)
            if logs is None:
                logs = self._log(record.topic)
            key = record.key
            if record.partition is not None:
                index = record.partition
            else:
                index = home_partition(key, partitions) if key is not None else 0
            log = logs[index]
            log.append((key, record.value, record.headers))
            touched.add((record.topic, index))
        for topic, index in touched:
            tp = TopicPartition(topic, index)
            for members in self._members.values():
                for member in members:
                    member._has_records(tp)
        self._wake()
        if on_ack is not None:
            on_ack(())
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def prepare_changelogs(self, sources: Mapping[str, str]) -> dict[str, int]:
        """Create the changelogs that do not exist yet; each has the bus's partitions."""
        for changelog in sources:
            self._log(changelog)
        await trio.lowlevel.checkpoint()
        return dict.fromkeys(sources, self.partitions)

    async def read_changelog(
        self,
        topic: str,
        partition: int,
        apply: Callable[[Sequence[Record]], None],
        *,
        start: int = 0,
    ) -> int:
        """Hand ``apply`` the records of ``topic``'s ``partition`` from ``start``, in order."""
        logs = self._logs.get(topic)
        log = logs[partition] if logs is not None else []
        apply([Record(topic, partition, offset, *log[offset]) for offset in range(start, len(log))])
        await trio.lowlevel.checkpoint()
        return max(0, len(log) - start)

    async def changelog_bounds(self, topic: str, partition: int) -> tuple[int, int]:
        """Return 0 and the length of ``topic``'s ``partition``."""
        logs = self._logs.get(topic)
        await trio.lowlevel.checkpoint()
        return 0, len(logs[partition]) if logs is not None else 0

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create the topics that do not exist yet."""
        for topic in topics:
            self._log(topic)
        await trio.lowlevel.checkpoint()

    # -- inspection, for tests and tools -------------------------------------------

    def topics(self) -> list[str]:
        """Return every topic that exists, sorted."""
        return sorted(self._logs)

    def records(self, topic: str) -> list[Record]:
        """Return every record of ``topic``, partition by partition."""
        return [
            Record(topic, partition, offset, *stored)
            for partition, log in enumerate(self._logs.get(topic, []))
            for offset, stored in enumerate(log)
        ]

    def record_count(self, topic: str) -> int:
        """Return how many records ``topic`` holds (0 if it does not exist)."""
        return sum(len(log) for log in self._logs.get(topic, []))

    async def wait_for_records(self, topic: str, count: int) -> None:
        """Return once ``topic`` holds at least ``count`` records."""
        while self.record_count(topic) < count:
            await self._arrived.wait()

    def committed(self, group_id: str) -> dict[TopicPartition, int]:
        """Return the committed offsets of ``group_id``."""
        return dict(self._committed.get(group_id, {}))

    # -- internals -------------------------------------------------------------------

    def _log(self, topic: str) -> list[list[_Stored]]:
        partitions = self._logs.get(topic)
        if partitions is None:
            partitions = self._logs[topic] = [[] for _ in range(self.partitions)]
            self._rebalanced(
                group_id
                for group_id, members in self._members.items()
                if any(p.matches(topic) for member in members for p in member.patterns)
            )
        return partitions

    def _rebalanced(self, groups: Iterable[str]) -> None:
        """Rebalance ``groups``: a member joined or left, or a topic they read appeared.

        As in Kafka, other groups are left alone: their members keep reading.
        """
        rebalanced = False
        for group_id in groups:
            rebalanced = True
            committed = self._committed.setdefault(group_id, {})
            for member in self._members.get(group_id, []):
                if member.events is not None and member._positions:
                    committed.update(member.events.revoking(list(member._positions)))
        if rebalanced:
            self._generation += 1
            self._wake()

    def _wake(self) -> None:
        self._arrived.set()
        self._arrived = trio.Event()

    def _assignment(self, member: InProcessConsumer) -> list[TopicPartition]:
        members = sorted(self._members.get(member.group_id, []), key=lambda m: m.member_id)
        matching = sorted(
            TopicPartition(topic, p)
            for topic in self._logs
            if any(pattern.matches(topic) for pattern in member.patterns)
            for p in range(self.partitions)
        )
        index = members.index(member)
        return matching[index :: len(members)]


class InProcessConsumer:
    """One member of a consumer group on an ``InProcessBus``."""

    def __init__(
        self, bus: InProcessBus, patterns: tuple[TopicPattern, ...], group_id: str, member_id: int
    ) -> None:
        self.bus = bus
        self.patterns = patterns
        self.group_id = group_id
        self.member_id = member_id
        self.events: PartitionEvents | None = None
        self._generation = -1
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._unread: dict[TopicPartition, None] = {}
        """Assigned partitions holding records past their position, oldest news first.

        A poll visits only these (and rotates them, so none starves), not every
        assigned partition: a host of 1,000 nodes has 4,000 of those.
        """

    def assignment(self) -> list[TopicPartition]:
        """Return the partitions this member reads."""
        self._refresh()
        return list(self._positions)

    async def poll(self, max_records: int) -> list[Record]:
        """Wait for records on assigned, unpaused partitions; return at most ``max_records``."""
        while True:
            arrived = self.bus._arrived
            batch = self._take(max_records)
            if batch:
                await trio.lowlevel.checkpoint()
                return batch
            await arrived.wait()

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` for the group (partitions this member reads only)."""
        committed = self.bus._committed.setdefault(self.group_id, {})
        for tp, offset in offsets.items():
            if tp in self._positions:
                committed[tp] = offset
        await trio.lowlevel.checkpoint()

    def end_offsets(self) -> dict[TopicPartition, int]:
        """Return the end of each partition this member reads."""
        self._refresh()
        return {tp: len(self.bus._logs[tp.topic][tp.partition]) for tp in self._positions}

    async def wait_assigned(self) -> None:
        """Return at once: subscribing assigned this member its partitions."""
        await trio.lowlevel.checkpoint()

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop returning records of ``partitions``."""
        self._paused.update(partitions)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        """Return records of ``partitions`` again."""
        self._paused.difference_update(partitions)
        self.bus._wake()

    def _refresh(self) -> None:
        if self._generation == self.bus._generation:
            return
        self._generation = self.bus._generation
        assigned = self.bus._assignment(self)
        committed = self.bus._committed.get(self.group_id, {})
        revoked = [tp for tp in self._positions if tp not in assigned]
        for tp in revoked:
            del self._positions[tp]
        fresh = [tp for tp in assigned if tp not in self._positions]
        for tp in fresh:
            self._positions[tp] = committed.get(tp, 0)
        if self.events is not None:
            if revoked:
                self.events.revoked(revoked)
            if fresh:
                self.events.assigned(fresh)
        self._unread = {
            tp: None
            for tp, position in self._positions.items()
            if len(self.bus._logs[tp.topic][tp.partition]) > position
        }

    def _has_records(self, tp: TopicPartition) -> None:
        if tp in self._positions:
            self._unread[tp] = None

    def _take(self, max_records: int) -> list[Record]:
        self._refresh()
        batch: list[Record] = []
        for tp in list(self._unread):
            if tp in self._paused:
                continue
            position = self._positions[tp]
            log = self.bus._logs[tp.topic][tp.partition]
            taken = log[position : position + max_records - len(batch)]
            self._positions[tp] = position + len(taken)
            topic, partition = tp.topic, tp.partition
            batch.extend(
                Record(topic, partition, offset, key, value, headers)
                for offset, (key, value, headers) in enumerate(taken, position)
            )
            del self._unread[tp]
            if self._positions[tp] < len(log):
                self._unread[tp] = None  # more to read: to the back of the line
            if len(batch) >= max_records:
                break
        return batch
