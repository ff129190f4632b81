"""``KafkaBus``: the ``Bus`` port over a real Kafka cluster (kafka-python in threads)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import Any

import trio
from kafka import KafkaAdminClient
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic, OffsetSpec
from kafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    KafkaError,
    NotCoordinatorError,
    TopicAlreadyExistsError,
)

from onex_actors.core import BusError, TopicPattern
from onex_actors.runtime import BatchAck, OutboundRecord, PartitionEvents, Record, TopicPartition

from .._outage import BrokerOutage, watching_outages
from ._changelog import changelog_bounds, prepare_changelogs, read_changelog
from ._consumer import KafkaConsumerBridge
from ._producer import ProducerBridge

__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "KafkaBus", "open_kafka_bus"]

logger = logging.getLogger("onex_actors.kafka")

DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
"""The producer's limit on one record (kafka-python's ``max_request_size`` default)."""


class KafkaBus:
    """Publishes through one shared producer thread; each consumer has its own thread."""

    def __init__(
        self,
        client_config: Mapping[str, Any],
        producer: ProducerBridge,
        *,
        partitions: int = 4,
        replication_factor: int = 1,
        create_topics: bool = True,
        max_poll_records: int = 500,
        session_timeout_ms: int = 10_000,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        stall_timeout_s: float = 60.0,
        call_timeout_s: float = 10.0,
    ) -> None:
        self.client_config = dict(client_config)
        self.producer = producer
        self.max_request_bytes = max_request_bytes
        self.topic_limits: dict[str, int] = {}
        """``max.message.bytes`` of the topics ``ensure_topics`` was given, as the broker says."""
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.create_topics = create_topics
        self.max_poll_records = max_poll_records
        self.session_timeout_ms = session_timeout_ms
        self.stall_timeout_s = stall_timeout_s
        self.call_timeout_s = call_timeout_s
        self.outage: BrokerOutage | None = None
        """Watches whether the brokers answer (set by ``open_kafka_bus``)."""

    @asynccontextmanager
    async def consumer(
        self,
        patterns: Sequence[TopicPattern],
        group_id: str,
        *,
        partitions: PartitionEvents | None = None,
    ) -> AsyncIterator[KafkaConsumerBridge]:
        """Join ``group_id`` subscribed to every topic matching ``patterns``.

        It reports its partitions' lifecycle to ``partitions``, and commits the offsets
        its ``revoking`` returns before a rebalance takes partitions away.
        """
        await trio.to_thread.run_sync(self._wait_for_coordinator, group_id)
        bridge = KafkaConsumerBridge(
            self.client_config,
            patterns,
            group_id,
            max_poll_records=self.max_poll_records,
            session_timeout_ms=self.session_timeout_ms,
            stall_timeout_s=self.stall_timeout_s,
            call_timeout_s=self.call_timeout_s,
            partitions=partitions,
        )
        await bridge.start()
        try:
            yield bridge
        finally:
            with trio.CancelScope(shield=True):
                await bridge.aclose()

    async def publish(
        self, records: Sequence[OutboundRecord], on_ack: BatchAck | None = None
    ) -> None:
        """Queue ``records`` for the producer thread."""
        await self.producer.publish(records, on_ack)

    @property
    def transactional(self) -> bool:
        """Whether the producer is transactional (``delivery: exactly_once``)."""
        return self.producer.transactional_id is not None

    async def commit_transaction(
        self, offsets: Mapping[TopicPartition, int], group_metadata: object
    ) -> None:
        """Commit the producer's open transaction with a consumer's ``offsets``.

        The offsets go with the consumer's group metadata (KIP-447), so a member whose
        generation the group has left behind cannot commit: its transaction aborts.
        """
        if self.producer.transactional_id is None:
            raise BusError("this Kafka bus has no transactional producer (delivery: at_least_once)")
        await self.producer.commit_transaction(offsets, group_metadata)

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create missing topics (unless topic creation is off); read their size limits."""
        await trio.to_thread.run_sync(self._prepare_topics, list(topics))

    async def prepare_changelogs(self, sources: Mapping[str, str]) -> dict[str, int]:
        """Create or check each changelog (compacted, its command topic's partitions)."""
        return await trio.to_thread.run_sync(
            partial(
                prepare_changelogs,
                self.client_config,
                sources,
                replication_factor=self.replication_factor,
                create=self.create_topics,
            )
        )

    async def read_changelog(
        self,
        topic: str,
        partition: int,
        apply: Callable[[Sequence[Record]], None],
        *,
        start: int = 0,
    ) -> int:
        """Hand ``apply`` the committed records of a changelog partition, in order."""
        return await trio.to_thread.run_sync(
            partial(read_changelog, self.client_config, topic, partition, apply, start=start)
        )

    async def changelog_bounds(self, topic: str, partition: int) -> tuple[int, int]:
        """Return a changelog partition's first offset and its last stable offset."""
        return await trio.to_thread.run_sync(changelog_bounds, self.client_config, topic, partition)

    def unreachable(self) -> str | None:
        """Say since when no broker answers, or None while they do."""
        return self.outage.describe() if self.outage is not None else None

    def record_limit(self, topic: str) -> int:
        """Return the producer's ``max_request_bytes``, or the topic's limit where lower."""
        return min(self.max_request_bytes, self.topic_limits.get(topic, self.max_request_bytes))

    def _prepare_topics(self, topics: list[str]) -> None:
        try:
            admin = KafkaAdminClient(**self.client_config)
        except (KafkaError, OSError, ValueError) as exc:
            raise BusError(
                f"cannot reach Kafka to create topics: {type(exc).__name__}: {exc}"
            ) from None
        try:
            if self.create_topics:
                self._create_missing(admin, topics)
            self.topic_limits.update(_topic_limits(admin, topics))
        finally:
            admin.close()

    def _wait_for_coordinator(self, group_id: str) -> None:
        """Wait (bounded) until ``group_id``'s coordinator answers, as on a fresh broker.

        The first group on a broker creates its offsets topic; a member joining while the
        coordinator loads it is refused and retries, logging a warning each time (five
        ``NotCoordinatorError`` lines on a host's first start). Asking for the group's
        committed offsets until the answer comes joins quietly instead.
        """
        try:
            admin = KafkaAdminClient(**self.client_config)
        except (KafkaError, OSError, ValueError):
            return  # the consumer says what is wrong
        deadline = time.monotonic() + COORDINATOR_WAIT_S
        try:
            while time.monotonic() < deadline:
                try:
                    admin.list_group_offsets({group_id: None})
                    return
                except _COORDINATOR_NOT_READY:
                    time.sleep(0.05)  # a worker thread, polling the coordinator
                except (KafkaError, OSError, ValueError, KeyError, TypeError):
                    return  # not a coordinator that loads: the consumer says what is wrong
            logger.info(
                "group %s: its coordinator still loads after %gs", group_id, COORDINATOR_WAIT_S
            )
        finally:
            admin.close()

    def _create_missing(self, admin: KafkaAdminClient, topics: list[str]) -> None:
        try:
            existing = set(admin.list_topics())
            missing = [
                NewTopic(topic, self.partitions, self.replication_factor)
                for topic in dict.fromkeys(topics)
                if topic not in existing
            ]
            if missing:
                with suppress(TopicAlreadyExistsError):
                    admin.create_topics(missing)
                _wait_for_leaders(admin, [new.name for new in missing])
        except KafkaError as exc:
            raise BusError(f"creating topics failed: {type(exc).__name__}: {exc}") from None


LEADER_WAIT_S = 10.0
"""How long topic creation waits for the new partitions' leaders."""
COORDINATOR_WAIT_S = 5.0
"""How long a consumer waits for its group's coordinator before joining anyway."""
_COORDINATOR_NOT_READY = (
    CoordinatorNotAvailableError,
    NotCoordinatorError,
    CoordinatorLoadInProgressError,
)


def _wait_for_leaders(admin: KafkaAdminClient, topics: list[str]) -> None:
    """Wait (bounded) until every partition of the new ``topics`` has a leader that serves it.

    A producer that sends before then is refused (``NotLeaderForPartitionError``) and
    retries, logging a warning for each: a host's first start printed one. The metadata
    names a leader a moment before that broker serves the partition, so the wait ends
    with a request only the serving leader answers (its log end offsets).
    """
    deadline = time.monotonic() + LEADER_WAIT_S
    while time.monotonic() < deadline:
        described = admin.describe_topics(topics)
        if len(described) == len(topics) and all(
            topic.get("error_code", 0) == 0
            and topic.get("partitions")
            and all(p.get("leader_id", -1) >= 0 for p in topic["partitions"])
            for topic in described
        ):
            partitions = {
                KafkaTopicPartition(topic["name"], p["partition_index"]): OffsetSpec.LATEST
                for topic in described
                for p in topic["partitions"]
            }
            left_ms = max(100, int((deadline - time.monotonic()) * 1000))
            with suppress(KafkaError):
                admin.list_partition_offsets(partitions, timeout_ms=left_ms)
                return
        time.sleep(0.1)  # a worker thread, polling the broker's metadata
    logger.info("new topics still elect their leaders after %g s", LEADER_WAIT_S)


def _topic_limits(admin: KafkaAdminClient, topics: list[str]) -> dict[str, int]:
    """Each topic's ``max.message.bytes``; none where the broker does not say (tansu)."""
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, topic, ["max.message.bytes"])
        for topic in dict.fromkeys(topics)
    ]
    try:
        described = admin.describe_configs(resources, config_filter="all")
    except (KafkaError, OSError, ValueError, KeyError, TypeError) as exc:
        logger.info("topic size limits unknown (%s): using the producer's limit", exc)
        return {}
    limits: dict[str, int] = {}
    for topic, configs in described.get("topic", {}).items():
        value = configs.get("max.message.bytes", {}).get("value")
        if isinstance(value, str) and value.isdigit():
            limits[topic] = int(value)
    return limits


@asynccontextmanager
async def open_kafka_bus(
    client_config: Mapping[str, Any],
    *,
    partitions: int = 4,
    replication_factor: int = 1,
    create_topics: bool = True,
    max_poll_records: int = 500,
    session_timeout_ms: int = 10_000,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    stall_timeout_s: float = 60.0,
    call_timeout_s: float = 10.0,
    transactional_id: str | None = None,
    transaction_timeout_ms: int = 60_000,
    renew_when_fenced: bool = False,
) -> AsyncIterator[KafkaBus]:
    """Start the shared producer, yield the bus, flush and close the producer on exit.

    ``max_request_bytes`` is the producer's limit on one record (its
    ``max_request_size``); a result over it is answered with an error event.
    ``stall_timeout_s``: a consumer with records waiting on an unpaused partition and
    nothing read for this long stops with a ``BusError``; ``call_timeout_s`` bounds a
    commit through the consumer thread and joining it at shutdown.
    ``session_timeout_ms`` is the consumer-group session: how long a silent member keeps
    its partitions (and, on tansu, about twice how long each group join takes).
    ``transactional_id`` makes the producer transactional (``delivery: exactly_once``):
    see ``KafkaBus.commit_transaction``.
    """
    producer = ProducerBridge(
        client_config,
        max_request_bytes=max_request_bytes,
        transactional_id=transactional_id,
        transaction_timeout_ms=transaction_timeout_ms,
        renew_when_fenced=renew_when_fenced,
    )
    await producer.start()
    try:
        bus = KafkaBus(
            client_config,
            producer,
            partitions=partitions,
            replication_factor=replication_factor,
            create_topics=create_topics,
            max_poll_records=max_poll_records,
            session_timeout_ms=session_timeout_ms,
            max_request_bytes=max_request_bytes,
            stall_timeout_s=stall_timeout_s,
            call_timeout_s=call_timeout_s,
        )
        with watching_outages(
            str(client_config["bootstrap_servers"]),
            ["kafka"],
            security_protocol=str(client_config.get("security_protocol", "PLAINTEXT")),
        ) as outage:
            bus.outage = outage
            yield bus
    finally:
        with trio.CancelScope(shield=True):
            await producer.aclose()
