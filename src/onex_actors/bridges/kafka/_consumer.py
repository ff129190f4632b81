"""kafka-python's consumer as a ``ConsumerClient``: what differs from librdkafka's.

The consumer core (``bridges._consumer_core``) runs it on its thread. kafka-python runs
its rebalance listener on its own IO thread, inside its event loop: the listener is an
async one, so the commit before a revocation is awaited there (a blocking commit would
wait on the loop it runs on). While trio is behind, every partition is paused and
polling goes on, so the member keeps its place in the group.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata
from kafka import TopicPartition as KafkaTopicPartition
from kafka.errors import KafkaError
from kafka.structs import MemberState

from onex_actors.core import TopicPattern
from onex_actors.runtime import PartitionEvents, Record, TopicPartition

from .._consumer_client import Fetched, GroupPosition, Progress, Rebalances
from .._consumer_core import ConsumerCore
from ._repairs import UnreadableRecord, repair_consumer

__all__ = ["KafkaConsumerBridge", "KafkaPythonClient", "subscription_regex"]

logger = logging.getLogger("onex_actors.kafka")


def subscription_regex(patterns: Sequence[TopicPattern]) -> str:
    """One regex matching every topic any of ``patterns`` matches."""
    return "^(?:" + "|".join(p.regex.pattern for p in patterns) + ")$"


class KafkaConsumerBridge(ConsumerCore):
    """A consumer-group member on kafka-python; a ``BusConsumer``."""

    def __init__(
        self,
        client_config: Mapping[str, Any],
        patterns: Sequence[TopicPattern],
        group_id: str,
        *,
        max_poll_records: int = 500,
        session_timeout_ms: int = 10_000,
        stall_timeout_s: float = 60.0,
        call_timeout_s: float = 10.0,
        isolation_level: str = "read_committed",
        partitions: PartitionEvents | None = None,
    ) -> None:
        client = KafkaPythonClient(
            client_config,
            patterns,
            group_id,
            max_poll_records=max_poll_records,
            session_timeout_ms=session_timeout_ms,
            isolation_level=isolation_level,
            commit_timeout_ms=int(call_timeout_s * 1000),
        )
        super().__init__(
            client,
            group_id,
            max_poll_records=max_poll_records,
            stall_timeout_s=stall_timeout_s,
            call_timeout_s=call_timeout_s,
            partitions=partitions,
        )


class KafkaPythonClient:
    """kafka-python's ``KafkaConsumer`` behind the ``ConsumerClient`` interface."""

    client_errors: tuple[type[BaseException], ...] = (KafkaError, OSError)
    poll_name = "KafkaConsumer.poll(timeout_ms=50)"
    io_thread_prefix: str | None = "kafka-io"
    holds_by_pausing = True
    checks_assigned_generation = True

    def __init__(
        self,
        client_config: Mapping[str, Any],
        patterns: Sequence[TopicPattern],
        group_id: str,
        *,
        max_poll_records: int,
        session_timeout_ms: int,
        isolation_level: str,
        commit_timeout_ms: int,
    ) -> None:
        self.client_config = dict(client_config)
        self.group_id = group_id
        self.regex = subscription_regex(patterns)
        literal = not any({"*", "#"} & set(pattern.text) for pattern in patterns)
        self.topics = [pattern.text for pattern in patterns] if literal else None
        """The topic names to subscribe to, when no pattern has a wildcard (no metadata
        round trip to resolve them); else None and the client follows ``regex``."""
        self.max_poll_records = max_poll_records
        self.session_timeout_ms = session_timeout_ms
        self.isolation_level = isolation_level
        """Records of aborted transactions are never read (``read_committed``)."""
        self.commit_timeout_ms = commit_timeout_ms
        self._consumer: KafkaConsumer | None = None

    @property
    def consumer(self) -> KafkaConsumer:
        """The client (once :meth:`open` made it)."""
        if self._consumer is None:
            raise RuntimeError("the kafka-python consumer is not open")
        return self._consumer

    def open(self, rebalances: Rebalances) -> None:
        """Create the consumer and subscribe (by names where no pattern has a wildcard)."""
        consumer = KafkaConsumer(
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_poll_records,
            metadata_max_age_ms=5000,
            session_timeout_ms=self.session_timeout_ms,
            max_poll_interval_ms=60_000,  # the poll loop never waits on handlers
            heartbeat_interval_ms=min(3_000, self.session_timeout_ms // 3),
            isolation_level=self.isolation_level,
            **self.client_config,
        )
        repair_consumer(consumer)
        self._consumer = consumer
        listener = _Listener(self, rebalances)
        if self.topics is not None:
            consumer.subscribe(topics=self.topics, listener=listener)
            # the group's leader assigns from this metadata: fetched before the first
            # join (one call fetches every topic's), or a fresh broker's first join
            # logs "No partition metadata" warnings
            if self.topics:
                consumer.partitions_for_topic(self.topics[0])
        else:
            consumer.subscribe(pattern=self.regex, listener=listener)

    def close(self) -> None:
        """Close without committing."""
        if self._consumer is not None:
            self._consumer.close(autocommit=False)

    def refresh_subscription(self) -> None:
        """kafka-python follows its pattern itself."""

    def fetch(self, timeout_s: float, max_records: int) -> Fetched:
        """Poll once; an unreadable record is skipped and returned to dead-letter."""
        consumer = self.consumer
        try:
            fetched = consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except UnreadableRecord as unreadable:
            return Fetched([self._skip_unreadable(unreadable)])
        records = [
            Record(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
            for records in fetched.values()
            for r in records
        ]
        ends: dict[TopicPartition, int] = {}
        for tp in fetched:  # as of this fetch: kafka-python keeps it from the response
            if (end := consumer.highwater(tp)) is not None:
                ends[_ours(tp)] = end
        return Fetched(records, ends)

    def assignment(self) -> set[TopicPartition]:
        """Return the partitions assigned now."""
        return {_ours(tp) for tp in self.consumer.assignment()}

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        """Pause ``partitions``."""
        self.consumer.pause(*(_theirs(tp) for tp in partitions))

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        """Resume ``partitions``."""
        self.consumer.resume(*(_theirs(tp) for tp in partitions))

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` (blocks the consumer thread until the broker answers)."""
        self.consumer.commit(offsets=_kafka_offsets(offsets))

    def seek_to_committed(self) -> list[str]:
        """Seek every assigned partition to its committed offset (or its beginning)."""
        consumer = self.consumer
        sought = []
        for tp in consumer.assignment():
            committed = consumer.committed(tp)
            if committed is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
            sought.append(f"{tp.topic}:{tp.partition}@{committed}")
        return sought

    def group_position(self) -> GroupPosition:
        """Return the member's metadata; stable as kafka-python's member state says."""
        metadata = self.consumer.group_metadata()
        return GroupPosition(
            metadata,
            metadata.generation_id,
            metadata.member_id or "",
            stable=metadata.state == MemberState.STABLE,
        )

    def progress(self, partitions: set[TopicPartition]) -> dict[TopicPartition, Progress] | None:
        """Positions now and log ends asked of the brokers (None while they do not answer)."""
        consumer = self.consumer
        theirs = [_theirs(tp) for tp in partitions]
        try:
            ends = consumer.end_offsets(theirs, timeout_ms=5_000)
        except KafkaError as exc:
            logger.info("group %s: end offsets unknown (%s)", self.group_id, exc)
            return None
        progress: dict[TopicPartition, Progress] = {}
        for tp in theirs:
            try:
                position = consumer.position(tp, timeout_ms=0)
            except KafkaError:  # not known yet (being reset): no verdict this time
                continue
            if position is not None and tp in ends:
                progress[_ours(tp)] = Progress(position, ends[tp])
        return progress

    def _skip_unreadable(self, unreadable: UnreadableRecord) -> Record:
        """Seek past a record the client cannot read; return it for a dead letter.

        Each offset of an unreadable batch is met (and dead-lettered) on its own: the
        broker hands back the whole batch for any offset inside it.
        """
        logger.error("Kafka consumer of group %s cannot read %s", self.group_id, unreadable)
        self.consumer.seek(
            KafkaTopicPartition(unreadable.topic, unreadable.partition), unreadable.offset + 1
        )
        cause = unreadable.cause
        return Record(
            unreadable.topic,
            unreadable.partition,
            unreadable.offset,
            None,
            None,
            unreadable=f"{type(cause).__name__}: {cause}",
        )


class _Listener(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    """Reports kafka-python's rebalances; runs on its IO thread, inside its event loop."""

    def __init__(self, client: KafkaPythonClient, rebalances: Rebalances) -> None:
        self.client = client
        self.rebalances = rebalances

    async def on_partitions_revoked(self, revoked: Any) -> None:
        ours = [_ours(tp) for tp in revoked]
        offsets = self.rebalances.before_revoke(ours)
        if offsets:
            await self._commit(offsets)
        self.rebalances.revoked(ours, lost=False)

    async def on_partitions_lost(self, lost: Any) -> None:
        self.rebalances.revoked([_ours(tp) for tp in lost], lost=True)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        generation = self.client.consumer.group_metadata().generation_id
        self.rebalances.assigned([_ours(tp) for tp in assigned], generation)

    async def _commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit on the event loop the listener runs on (``commit`` would wait on it)."""
        coordinator = self.client.consumer._coordinator
        try:
            await coordinator._commit_offsets_sync_async(
                _kafka_offsets(offsets), timeout_ms=self.client.commit_timeout_ms
            )
        except (KafkaError, OSError) as exc:
            self.rebalances.revoke_committed(len(offsets), f"{type(exc).__name__}: {exc}")
            return
        self.rebalances.revoke_committed(len(offsets), None)


def _ours(tp: KafkaTopicPartition) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


def _theirs(tp: TopicPartition) -> KafkaTopicPartition:
    return KafkaTopicPartition(tp.topic, tp.partition)


def _kafka_offsets(offsets: Mapping[TopicPartition, int]) -> dict[KafkaTopicPartition, Any]:
    return {_theirs(tp): OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()}
