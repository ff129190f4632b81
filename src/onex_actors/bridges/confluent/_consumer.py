"""confluent-kafka's consumer (librdkafka) as a ``ConsumerClient``: what differs.

The consumer core (``bridges._consumer_core``) runs it on its thread. Rebalancing is
incremental: the KIP-848 consumer group protocol where the broker offers it
(``group.protocol=consumer``), else the classic protocol with the ``cooperative-sticky``
assignor. librdkafka runs the rebalance callbacks on the consumer thread, inside
``poll``: the commit before a revocation is a plain synchronous one there. While trio is
behind, the thread waits rather than pausing (a pause drops what librdkafka fetched
ahead; its own threads keep the membership).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Literal, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
)
from confluent_kafka import TopicPartition as CKTopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin import OffsetSpec as _OffsetSpec  # type: ignore[attr-defined]

from onex_actors.core import TopicPattern
from onex_actors.runtime import PartitionEvents, Record, TopicPartition

from .._consumer_client import Fetched, GroupPosition, Progress, Rebalances
from .._consumer_core import ConsumerCore
from ._client_log import CLIENT_LOGGER
from ._subscription import ResolvedSubscription

__all__ = [
    "ConfluentConsumerBridge",
    "LibrdkafkaClient",
    "group_generation",
    "unreadable_record",
]

logger = logging.getLogger("onex_actors.kafka")
_WATERMARK_TIMEOUT_S = 2.0
_LATEST: Any = _OffsetSpec.latest()  # type: ignore[no-untyped-call]
_EARLIEST: Any = _OffsetSpec.earliest()  # type: ignore[no-untyped-call]


class ConfluentConsumerBridge(ConsumerCore):
    """A consumer-group member on librdkafka; a ``BusConsumer``."""

    def __init__(
        self,
        config: Mapping[str, Any],
        patterns: Sequence[TopicPattern],
        group_id: str,
        *,
        max_poll_records: int = 500,
        session_timeout_ms: int = 10_000,
        stall_timeout_s: float = 60.0,
        call_timeout_s: float = 10.0,
        group_protocol: Literal["classic", "consumer"] = "classic",
        partitions: PartitionEvents | None = None,
    ) -> None:
        client = LibrdkafkaClient(
            config,
            patterns,
            group_id,
            session_timeout_ms=session_timeout_ms,
            group_protocol=group_protocol,
            call_timeout_s=call_timeout_s,
        )
        super().__init__(
            client,
            group_id,
            max_poll_records=max_poll_records,
            stall_timeout_s=stall_timeout_s,
            call_timeout_s=call_timeout_s,
            partitions=partitions,
        )


class LibrdkafkaClient:
    """confluent-kafka's ``Consumer`` behind the ``ConsumerClient`` interface."""

    client_errors: tuple[type[BaseException], ...] = (KafkaException,)
    poll_name = "Consumer.poll(0.05)"
    io_thread_prefix: str | None = None
    holds_by_pausing = False

    def __init__(
        self,
        config: Mapping[str, Any],
        patterns: Sequence[TopicPattern],
        group_id: str,
        *,
        session_timeout_ms: int,
        group_protocol: Literal["classic", "consumer"],
        call_timeout_s: float,
    ) -> None:
        self.client_config = dict(config)
        """The connection settings alone (for the admin client that reads log ends)."""
        self.config = {
            **config,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "topic.metadata.refresh.interval.ms": 5_000,
            # records of aborted transactions are never read (librdkafka's default too)
            "isolation.level": "read_committed",
        }
        if group_protocol == "consumer":
            # the session is the broker's in KIP-848's protocol; the assignor runs there
            # too, and ``range`` splits each topic among the members (``uniform`` balances
            # the count and may give one member every partition of the busiest topic)
            self.config["group.protocol"] = "consumer"
            self.config["group.remote.assignor"] = "range"
        else:
            self.config["session.timeout.ms"] = session_timeout_ms
            self.config["partition.assignment.strategy"] = "cooperative-sticky"
        self.group_protocol = group_protocol
        self.checks_assigned_generation = group_protocol == "classic"
        """With the classic protocol a transaction waits for the generation's assignment."""
        self.group_id = group_id
        self.call_timeout_s = call_timeout_s
        self.subscription = [_subscription(pattern) for pattern in patterns]
        wildcards = any(name.startswith("^") for name in self.subscription)
        self._resolved = (
            ResolvedSubscription(patterns) if wildcards and group_protocol == "consumer" else None
        )
        """Set where the client resolves the patterns (KIP-848 groups; see _subscription)."""
        self._consumer: Consumer | None = None
        self._admin: AdminClient | None = None
        self._rebalances: Rebalances | None = None

    @property
    def consumer(self) -> Consumer:
        """The client (once :meth:`open` made it)."""
        if self._consumer is None:
            raise RuntimeError("the librdkafka consumer is not open")
        return self._consumer

    def open(self, rebalances: Rebalances) -> None:
        """Create the consumer and subscribe."""
        self._rebalances = rebalances
        self._consumer = Consumer(self.config, logger=CLIENT_LOGGER)
        # log ends are asked on the admin client's own connections: the consumer's hold
        # a long-polling fetch, and a request queued behind it waits up to
        # fetch.wait.max.ms (500 ms), once per partition
        self._admin = AdminClient(self.client_config, logger=CLIENT_LOGGER)
        if self._resolved is None:
            self._subscribe(self.subscription)
        else:
            self.refresh_subscription()

    def close(self) -> None:
        """Close (leaving the group) without committing."""
        self._admin = None
        if self._consumer is not None:
            self._consumer.close()

    def refresh_subscription(self) -> None:
        """Subscribe to the topics matching the patterns now, if they changed (KIP-848)."""
        if self._resolved is None:
            return
        topics = self._resolved.changed(self.consumer)
        if topics is None:
            return
        if topics:
            self._subscribe(topics)
        else:
            self.consumer.unsubscribe()

    def fetch(self, timeout_s: float, max_records: int) -> Fetched:
        """Wait for one record, then take what else is already here."""
        consumer = self.consumer
        # consume() waits for a full batch or its timeout: wait for one record only
        first = consumer.poll(timeout_s)
        if first is None:
            return Fetched([])
        messages = [first, *consumer.consume(num_messages=max_records - 1, timeout=0)]
        records: list[Record] = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(_record(message))
            elif error.fatal():
                raise KafkaException(error)
            elif (unreadable := unreadable_record(message)) is not None:
                logger.error("Kafka consumer of group %s: %s", self.group_id, unreadable.unreadable)
                records.append(unreadable)
            else:
                logger.warning("Kafka consumer of group %s: %s", self.group_id, error)
        return Fetched(records, self._ends({r.topic_partition for r in records}))

    def assignment(self) -> set[TopicPartition]:
        """Return the partitions assigned now."""
        return set(_ours(self.consumer.assignment()))

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        """Pause ``partitions``."""
        self.consumer.pause([_theirs(tp) for tp in partitions])

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        """Resume ``partitions``."""
        self.consumer.resume([_theirs(tp) for tp in partitions])

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` synchronously."""
        self.consumer.commit(offsets=_with_offsets(offsets), asynchronous=False)

    def seek_to_committed(self) -> list[str]:
        """Seek every assigned partition to its committed offset (or its beginning)."""
        consumer = self.consumer
        owned = consumer.assignment()
        if not owned:
            return []
        committed = consumer.committed(owned, timeout=self.call_timeout_s)
        positions = [
            CKTopicPartition(
                tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            )
            for tp in committed
        ]
        for position in positions:
            try:
                consumer.seek(position)
            except KafkaException:
                # not fetching yet (just assigned): assigning it again sets its position
                consumer.incremental_unassign([position])
                consumer.incremental_assign([position])
                if self._rebalances is not None:
                    self._rebalances.pause_unknown([_our(position)])
        return [f"{p.topic}:{p.partition}@{p.offset}" for p in positions]

    def group_position(self) -> GroupPosition:
        """Return the member's serialized metadata, with the generation read out of it."""
        metadata = self.consumer.consumer_group_metadata()
        generation, member = group_generation(metadata)
        return GroupPosition(metadata, generation, member)

    def progress(self, partitions: set[TopicPartition]) -> dict[TopicPartition, Progress] | None:
        """Return positions now and log ends asked of the brokers, in one request each.

        A partition nothing was consumed from yet reads from its committed offset, or
        its log start without one (``auto.offset.reset: earliest``). The end is the last
        stable offset, what a ``read_committed`` consumer can reach. None while the
        brokers do not answer.
        """
        consumer = self.consumer
        try:
            positions = consumer.position([_theirs(tp) for tp in partitions])
            unread = [tp for tp in positions if tp.offset < 0]
            if unread:
                committed = consumer.committed(unread, timeout=_WATERMARK_TIMEOUT_S)
                positions = [tp for tp in positions if tp.offset >= 0] + committed
            ends = self._list_offsets(positions, _LATEST)
            starts = self._list_offsets([tp for tp in positions if tp.offset < 0], _EARLIEST)
        except (KafkaException, FutureTimeout) as exc:
            reason = exc.args[0] if exc.args else "no answer in time"
            logger.info("group %s: end offsets unknown (%s)", self.group_id, reason)
            return None
        progress: dict[TopicPartition, Progress] = {}
        for tp in positions:
            key = (tp.topic, tp.partition)
            if key in ends:
                position = tp.offset if tp.offset >= 0 else starts.get(key, 0)
                progress[_our(tp)] = Progress(position, ends[key])
        return progress

    def _list_offsets(
        self, partitions: Sequence[CKTopicPartition], spec: Any
    ) -> dict[tuple[str, int], int]:
        """Ask the brokers for ``spec``'s offset of each of ``partitions`` at once."""
        if not partitions or self._admin is None:
            return {}
        try:
            return self._list_offsets_once(partitions, spec)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not isinstance(error, KafkaError) or error.code() != KafkaError._UNKNOWN_PARTITION:
                raise
            # a topic grew since the admin client last read its metadata (it reads it
            # again only when asked): ask, then ask for the offsets once more
            for topic in {tp.topic for tp in partitions}:
                self._admin.list_topics(topic=topic, timeout=_WATERMARK_TIMEOUT_S)
            return self._list_offsets_once(partitions, spec)

    def _list_offsets_once(
        self, partitions: Sequence[CKTopicPartition], spec: Any
    ) -> dict[tuple[str, int], int]:
        assert self._admin is not None
        asked = {CKTopicPartition(tp.topic, tp.partition): spec for tp in partitions}
        futures = self._admin.list_offsets(
            asked,
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=_WATERMARK_TIMEOUT_S,
        )
        return {
            (tp.topic, tp.partition): future.result(timeout=_WATERMARK_TIMEOUT_S * 2).offset
            for tp, future in futures.items()
        }

    def _ends(self, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Return the high watermarks librdkafka has from its last fetches (no request)."""
        ends: dict[TopicPartition, int] = {}
        for tp in partitions:
            try:
                _, high = self.consumer.get_watermark_offsets(_theirs(tp), cached=True)
            except KafkaException:
                continue
            if high >= 0:
                ends[tp] = high
        return ends

    def _subscribe(self, topics: Sequence[str]) -> None:
        self.consumer.subscribe(
            list(topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def _on_assign(self, consumer: Consumer, partitions: list[CKTopicPartition]) -> None:
        # runs on the consumer thread, inside poll(); librdkafka keeps a partition's
        # pause flag while it is away (Java drops it): the core reconciles it anew
        assert self._rebalances is not None
        generation, _ = group_generation(consumer.consumer_group_metadata())
        self._rebalances.assigned(_ours(partitions), generation)

    def _on_revoke(self, consumer: Consumer, partitions: list[CKTopicPartition]) -> None:
        # runs on the consumer thread, inside poll(), before the partitions go
        assert self._rebalances is not None
        revoked = _ours(partitions)
        offsets = self._rebalances.before_revoke(revoked)
        if offsets:
            try:
                consumer.commit(offsets=_with_offsets(offsets), asynchronous=False)
            except KafkaException as exc:
                self._rebalances.revoke_committed(len(offsets), str(exc.args[0]))
            else:
                self._rebalances.revoke_committed(len(offsets), None)
        self._rebalances.revoked(revoked, lost=False)

    def _on_lost(self, _consumer: Consumer, partitions: list[CKTopicPartition]) -> None:
        # already someone else's: a commit would be refused
        assert self._rebalances is not None
        self._rebalances.revoked(_ours(partitions), lost=True)


_METADATA_MAGIC = b"CGMDv2:"


def group_generation(metadata: object) -> tuple[int, str]:
    """Return the generation and member id in librdkafka's serialized group metadata.

    confluent-kafka hands the metadata over as librdkafka writes it: ``CGMDv2:``, the
    generation (int32, native order), then group id and member id, each NUL-ended.
    Anything else reads as no generation.
    """
    if not isinstance(metadata, bytes) or not metadata.startswith(_METADATA_MAGIC):
        return -1, ""
    start = len(_METADATA_MAGIC)
    try:
        (generation,) = struct.unpack_from("=i", metadata, start)
        _group, member, *_ = metadata[start + 4 :].split(b"\0", 2)
    except (struct.error, ValueError):
        return -1, ""
    return generation, member.decode(errors="replace")


def _subscription(pattern: TopicPattern) -> str:
    """Return a topic name as itself, a pattern with wildcards as a librdkafka regex."""
    if "*" in pattern.text or "#" in pattern.text:
        return pattern.posix
    return pattern.text


def _record(message: Message) -> Record:
    """Return a consumed message (never an error event) as the runtime's ``Record``."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None
    assert partition is not None
    assert offset is not None
    headers = message.headers()
    pairs: tuple[tuple[str, bytes | None], ...] = ()
    if isinstance(headers, list):  # what consumed messages carry: (str, bytes | None) pairs
        pairs = tuple(cast("list[tuple[str, bytes | None]]", headers))
    elif headers:
        pairs = tuple((name, _bytes(value)) for name, value in headers.items())
    return Record(topic, partition, offset, message.key(), message.value(), pairs)


def unreadable_record(message: Message) -> Record | None:
    """Return an error event about one record (a corrupt message) as a record to dead-letter.

    Errors about a partition or the connection (no offset) are not records: None.
    """
    error = message.error()
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if error is None or topic is None or partition is None or offset is None or offset < 0:
        return None
    return Record(
        topic, partition, offset, None, None, unreadable=f"librdkafka {error.name()}: {error.str()}"
    )


def _bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _with_offsets(offsets: Mapping[TopicPartition, int]) -> list[CKTopicPartition]:
    return [CKTopicPartition(tp.topic, tp.partition, offset) for tp, offset in offsets.items()]


def _theirs(tp: TopicPartition) -> CKTopicPartition:
    return CKTopicPartition(tp.topic, tp.partition)


def _our(tp: CKTopicPartition) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


def _ours(partitions: list[CKTopicPartition]) -> list[TopicPartition]:
    return [_our(tp) for tp in partitions]
