"""Per-test topic namespaces on a shared Kafka cluster: ``NamespacedBus``.

Tests that share one broker would read each other's records from the same topics. A
``NamespacedBus`` rewrites the ``env`` segment of onex topic names
(``onex.app.local...`` -> ``onex.app.t1a2b3...``) on the way out and back on the way in,
and prefixes consumer groups, so the runtime under test sees ordinary topics while the
broker keeps each test's apart.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

import attrs
from msgspec import structs

from onex_actors.core import TopicPattern
from onex_actors.runtime import (
    BatchAck,
    Bus,
    BusConsumer,
    ChangelogBus,
    OutboundRecord,
    PartitionEvents,
    Record,
    RewindableConsumer,
    TopicPartition,
    TransactionalBus,
    TransactionState,
)

__all__ = ["NamespacedBus", "NamespacedConsumer", "new_namespace"]


def new_namespace() -> str:
    """Return a fresh namespace (``t`` and ten hex digits): a valid ``env`` segment."""
    return "t" + uuid.uuid4().hex[:10]


def _swap(topic: str, old: str, new: str) -> str:
    parts = topic.split(".")
    if len(parts) > 2 and parts[0] == "onex" and parts[2] == old:
        parts[2] = new
    return ".".join(parts)


@attrs.define
class NamespacedConsumer:
    """A consumer of a ``NamespacedBus``: records come back with their ordinary topics."""

    inner: BusConsumer
    namespace: str

    def _in(self, record: Record) -> Record:
        return structs.replace(record, topic=_swap(record.topic, self.namespace, "local"))

    def _out(self, record: Record) -> Record:
        return structs.replace(record, topic=_swap(record.topic, "local", self.namespace))

    def _tp(self, tp: TopicPartition) -> TopicPartition:
        return TopicPartition(_swap(tp.topic, "local", self.namespace), tp.partition)

    async def poll(self, max_records: int) -> list[Record]:
        return [self._in(r) for r in await self.inner.poll(max_records)]

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        await self.inner.commit({self._tp(tp): offset for tp, offset in offsets.items()})

    async def wait_assigned(self) -> None:
        await self.inner.wait_assigned()

    def end_offsets(self) -> Mapping[TopicPartition, int]:
        return {
            TopicPartition(_swap(tp.topic, self.namespace, "local"), tp.partition): end
            for tp, end in self.inner.end_offsets().items()
        }

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self.inner.pause([self._tp(tp) for tp in partitions])

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self.inner.resume([self._tp(tp) for tp in partitions])

    async def rewind(self) -> None:
        assert isinstance(self.inner, RewindableConsumer)
        await self.inner.rewind()

    async def wait_revocation(self, seen: int) -> int:
        assert isinstance(self.inner, RewindableConsumer)
        return await self.inner.wait_revocation(seen)

    async def transaction_state(self) -> TransactionState:
        assert isinstance(self.inner, RewindableConsumer)
        state = await self.inner.transaction_state()
        owned = frozenset(
            TopicPartition(_swap(tp.topic, self.namespace, "local"), tp.partition)
            for tp in state.owned
        )
        return attrs.evolve(state, owned=owned)


@attrs.define
class NamespacedBus:
    """A bus whose topics and consumer groups live in a namespace of their own."""

    inner: Bus
    namespace: str = attrs.field(factory=new_namespace)

    def topic(self, topic: str) -> str:
        """Return the real topic behind ``topic`` on the broker."""
        return _swap(topic, "local", self.namespace)

    @asynccontextmanager
    async def consumer(
        self,
        patterns: Sequence[TopicPattern],
        group_id: str,
        *,
        partitions: PartitionEvents | None = None,
    ) -> AsyncIterator[NamespacedConsumer]:
        real = [TopicPattern(self.topic(p.text)) for p in patterns]
        translated = None if partitions is None else _RealEvents(partitions, self)
        async with self.inner.consumer(
            real, f"{self.namespace}-{group_id}", partitions=translated
        ) as consumer:
            yield NamespacedConsumer(consumer, self.namespace)

    async def publish(
        self, records: Sequence[OutboundRecord], on_ack: BatchAck | None = None
    ) -> None:
        out = [structs.replace(record, topic=self.topic(record.topic)) for record in records]
        await self.inner.publish(out, on_ack)

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        await self.inner.ensure_topics([self.topic(t) for t in topics])

    def record_limit(self, topic: str) -> int | None:
        return self.inner.record_limit(self.topic(topic))

    async def prepare_changelogs(self, sources: Mapping[str, str]) -> dict[str, int]:
        assert isinstance(self.inner, ChangelogBus)
        real = {self.topic(log): self.topic(source) for log, source in sources.items()}
        counts = await self.inner.prepare_changelogs(real)
        return {log: counts[self.topic(log)] for log in sources}

    async def read_changelog(
        self,
        topic: str,
        partition: int,
        apply: Callable[[Sequence[Record]], None],
        *,
        start: int = 0,
    ) -> int:
        assert isinstance(self.inner, ChangelogBus)

        def ours(records: Sequence[Record]) -> None:
            apply([structs.replace(record, topic=topic) for record in records])

        return await self.inner.read_changelog(self.topic(topic), partition, ours, start=start)

    async def changelog_bounds(self, topic: str, partition: int) -> tuple[int, int]:
        assert isinstance(self.inner, ChangelogBus)
        return await self.inner.changelog_bounds(self.topic(topic), partition)

    def unreachable(self) -> str | None:
        return self.inner.unreachable()

    @property
    def transactional(self) -> bool:
        return isinstance(self.inner, TransactionalBus) and self.inner.transactional

    async def commit_transaction(
        self, offsets: Mapping[TopicPartition, int], group_metadata: object
    ) -> None:
        assert isinstance(self.inner, TransactionalBus)
        real = {TopicPartition(self.topic(tp.topic), tp.partition): o for tp, o in offsets.items()}
        await self.inner.commit_transaction(real, group_metadata)


@attrs.frozen
class _RealEvents:
    """Partition events of a namespaced consumer, told with their ordinary topics."""

    events: PartitionEvents
    bus: NamespacedBus

    def _ours(self, partitions: Sequence[TopicPartition]) -> list[TopicPartition]:
        namespace = self.bus.namespace
        return [
            TopicPartition(_swap(tp.topic, namespace, "local"), tp.partition) for tp in partitions
        ]

    def assigned(self, partitions: Sequence[TopicPartition]) -> None:
        self.events.assigned(self._ours(partitions))

    def revoking(self, partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        done = self.events.revoking(self._ours(partitions))
        return {TopicPartition(self.bus.topic(tp.topic), tp.partition): o for tp, o in done.items()}

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        self.events.revoked(self._ours(partitions))
