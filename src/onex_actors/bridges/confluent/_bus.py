"""``ConfluentBus``: the ``Bus`` port over a real Kafka cluster through librdkafka."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Literal

import trio
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.cimpl import NewTopic

from onex_actors.core import BusError, ConfigError, TopicPattern
from onex_actors.runtime import BatchAck, OutboundRecord, PartitionEvents, Record, TopicPartition

from .._outage import BrokerOutage, watching_outages
from ..kafka._changelog import changelog_bounds, prepare_changelogs, read_changelog
from ._client_log import CLIENT_LOGGER
from ._consumer import ConfluentConsumerBridge
from ._producer import ConfluentProducerBridge

__all__ = ["ConfluentBus", "open_confluent_bus"]

logger = logging.getLogger("onex_actors.kafka")


class ConfluentBus:
    """Publishes through one librdkafka producer; each consumer has its own thread."""

    def __init__(
        self,
        config: Mapping[str, Any],
        producer: ConfluentProducerBridge,
        *,
        partitions: int = 4,
        replication_factor: int = 1,
        create_topics: bool = True,
        max_poll_records: int = 500,
        session_timeout_ms: int = 10_000,
        stall_timeout_s: float = 60.0,
        call_timeout_s: float = 10.0,
        group_protocol: Literal["classic", "consumer"] = "classic",
        changelog_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = dict(config)
        self.changelog_config = changelog_config
        """kafka-python settings for the changelogs (one implementation for both clients)."""
        self.group_protocol = group_protocol
        self.producer = producer
        self.topic_limits: dict[str, int] = {}
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.create_topics = create_topics
        self.max_poll_records = max_poll_records
        self.session_timeout_ms = session_timeout_ms
        self.stall_timeout_s = stall_timeout_s
        self.call_timeout_s = call_timeout_s
        self.outage: BrokerOutage | None = None
        """Watches whether the brokers answer (set by ``open_confluent_bus``)."""

    @asynccontextmanager
    async def consumer(
        self,
        patterns: Sequence[TopicPattern],
        group_id: str,
        *,
        partitions: PartitionEvents | None = None,
    ) -> AsyncIterator[ConfluentConsumerBridge]:
        """Join ``group_id`` subscribed to every topic matching ``patterns``.

        It reports its partitions' lifecycle to ``partitions``, and commits the offsets
        its ``revoking`` returns before a rebalance takes partitions away.
        With KIP-848's protocol the session timeout is the group's, set on the broker.
        """
        if self.group_protocol == "consumer":
            await trio.to_thread.run_sync(self._set_group_session, group_id)
        bridge = ConfluentConsumerBridge(
            self.config,
            patterns,
            group_id,
            max_poll_records=self.max_poll_records,
            session_timeout_ms=self.session_timeout_ms,
            stall_timeout_s=self.stall_timeout_s,
            call_timeout_s=self.call_timeout_s,
            group_protocol=self.group_protocol,
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
        """Queue ``records`` in the producer."""
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
        await self.producer.commit_transaction(offsets, group_metadata)

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create missing topics (unless topic creation is off); read their size limits."""
        await trio.to_thread.run_sync(self._prepare_topics, list(dict.fromkeys(topics)))

    async def prepare_changelogs(self, sources: Mapping[str, str]) -> dict[str, int]:
        """Create or check each changelog (compacted, its command topic's partitions).

        With kafka-python's admin client, as the kafka-python bus: one implementation.
        """
        return await trio.to_thread.run_sync(
            partial(
                prepare_changelogs,
                self._kafka_python_config(),
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
            partial(
                read_changelog, self._kafka_python_config(), topic, partition, apply, start=start
            )
        )

    async def changelog_bounds(self, topic: str, partition: int) -> tuple[int, int]:
        """Return a changelog partition's first offset and its last stable offset."""
        return await trio.to_thread.run_sync(
            changelog_bounds, self._kafka_python_config(), topic, partition
        )

    def _kafka_python_config(self) -> dict[str, Any]:
        if self.changelog_config is None:
            raise ConfigError(
                "this confluent-kafka bus was opened without changelog_config (kafka-python "
                "settings), which reducers' changelogs are read and prepared with"
            )
        return dict(self.changelog_config)

    def unreachable(self) -> str | None:
        """Say since when no broker answers, or None while they do."""
        return self.outage.describe() if self.outage is not None else None

    def record_limit(self, topic: str) -> int:
        """Return the producer's limit, or the topic's ``max.message.bytes`` where lower."""
        limit = self.producer.max_request_bytes
        return min(limit, self.topic_limits.get(topic, limit))

    def _set_group_session(self, group_id: str) -> None:
        """Set the group's ``consumer.session.timeout.ms`` (KIP-848 group config)."""
        entry = ConfigEntry(
            "consumer.session.timeout.ms",
            str(self.session_timeout_ms),
            incremental_operation=AlterConfigOpType.SET,
        )
        resource = ConfigResource(ConfigResource.Type.GROUP, group_id, incremental_configs=[entry])
        admin = AdminClient(self.config, logger=CLIENT_LOGGER)
        wait = self.call_timeout_s
        try:
            futures = admin.incremental_alter_configs([resource], request_timeout=wait)
            for future in futures.values():
                future.result(timeout=wait)
        except (KafkaException, TimeoutError) as exc:
            logger.warning(
                "cannot set the session timeout of consumer group %s to %d ms (%s): the "
                "broker's group.consumer.session.timeout.ms applies",
                group_id,
                self.session_timeout_ms,
                exc.args[0] if exc.args else type(exc).__name__,
            )

    def _prepare_topics(self, topics: list[str]) -> None:
        admin = AdminClient(self.config, logger=CLIENT_LOGGER)
        try:
            existing = set(admin.list_topics(timeout=10).topics)
        except KafkaException as exc:
            raise BusError(f"cannot reach Kafka to create topics: {exc.args[0]}") from None
        missing = [t for t in topics if t not in existing]
        created: set[str] = set()
        if self.create_topics and missing:
            new = [NewTopic(t, self.partitions, self.replication_factor) for t in missing]
            futures = admin.create_topics(new, operation_timeout=10, request_timeout=15)
            for topic, future in futures.items():
                try:
                    future.result(timeout=20)
                except TimeoutError:
                    raise BusError(f"creating topic {topic}: no answer within 20 s") from None
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise BusError(f"creating topic {topic} failed: {exc.args[0]}") from None
            created = set(missing)
        self.topic_limits.update(_topic_limits(admin, topics, created))


def _topic_limits(admin: AdminClient, topics: list[str], created: set[str]) -> dict[str, int]:
    """Each topic's ``max.message.bytes``; none where the broker does not say (tansu).

    A topic of ``created`` (made a moment ago) may not be known to the broker answering
    yet: it is asked again (every 0.1 s, for up to 5 s) rather than left without its
    limit. Any other topic is asked once.
    """
    limits: dict[str, int] = {}
    pending = list(dict.fromkeys(topics))
    unknown: list[str] = []
    reason: object = None
    for _ in range(TOPIC_LIMIT_TRIES):
        resources = [ConfigResource(ConfigResource.Type.TOPIC, topic) for topic in pending]
        pending = []
        try:
            described = admin.describe_configs(resources, request_timeout=10)
        except (KafkaException, ValueError, TypeError) as exc:
            unknown += [r.name for r in resources]
            reason = exc
            break
        for resource, future in described.items():
            try:
                entry = future.result(timeout=15).get("max.message.bytes")
            except KafkaException as exc:
                if exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART and (
                    resource.name in created
                ):
                    pending.append(resource.name)
                else:
                    unknown.append(resource.name)
                reason = exc.args[0]
                continue
            except (ValueError, TypeError, TimeoutError) as exc:
                unknown.append(resource.name)
                reason = exc
                continue
            if entry is not None and str(entry.value).isdigit():
                limits[resource.name] = int(entry.value)
        if not pending:
            break
        time.sleep(0.1)  # a worker thread, waiting for the new topics' metadata
    unknown += pending
    if unknown:
        logger.info(
            "size limit of %d topic(s) unknown (%s): using the producer's limit",
            len(unknown),
            reason,
        )
    return limits


TOPIC_LIMIT_TRIES = 50
"""How often a new topic's limit is asked for before the producer's is used."""


@asynccontextmanager
async def open_confluent_bus(
    config: Mapping[str, Any],
    *,
    partitions: int = 4,
    replication_factor: int = 1,
    create_topics: bool = True,
    max_poll_records: int = 500,
    session_timeout_ms: int = 10_000,
    max_request_bytes: int = 1024 * 1024,
    stall_timeout_s: float = 60.0,
    call_timeout_s: float = 10.0,
    group_protocol: Literal["classic", "consumer"] = "classic",
    transactional_id: str | None = None,
    transaction_timeout_ms: int = 60_000,
    renew_when_fenced: bool = False,
    changelog_config: Mapping[str, Any] | None = None,
) -> AsyncIterator[ConfluentBus]:
    """Start the shared producer, yield the bus, deliver what is queued on exit.

    ``config`` is librdkafka's (``bootstrap.servers``, ``security.protocol``...);
    ``group_protocol`` is the consumer groups' (``consumer`` needs a broker that offers
    KIP-848's protocol, as Apache Kafka 4 does). ``transactional_id`` makes the producer
    transactional (``delivery: exactly_once``): see ``ConfluentBus.commit_transaction``;
    ``stall_timeout_s``: a consumer with records waiting on an unpaused partition and
    nothing read for this long stops with a ``BusError``;
    ``renew_when_fenced``: the id is this process's own, a fencing is a timed-out
    transaction and a new producer goes on; ``changelog_config``: kafka-python settings
    for the same cluster, with which reducers' changelogs are prepared and read.
    """
    producer = ConfluentProducerBridge(
        config,
        max_request_bytes=max_request_bytes,
        transactional_id=transactional_id,
        transaction_timeout_ms=transaction_timeout_ms,
        renew_when_fenced=renew_when_fenced,
    )
    await producer.start()
    try:
        bus = ConfluentBus(
            config,
            producer,
            partitions=partitions,
            replication_factor=replication_factor,
            create_topics=create_topics,
            max_poll_records=max_poll_records,
            session_timeout_ms=session_timeout_ms,
            stall_timeout_s=stall_timeout_s,
            call_timeout_s=call_timeout_s,
            group_protocol=group_protocol,
            changelog_config=changelog_config,
        )
        with watching_outages(
            str(config["bootstrap.servers"]),
            [CLIENT_LOGGER.name],
            security_protocol=str(config.get("security.protocol", "plaintext")),
        ) as outage:
            bus.outage = outage
            yield bus
    finally:
        with trio.CancelScope(shield=True):
            await producer.aclose()
