"""Wiring: contracts + config + bus + handlers → a running ``RuntimeHost``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Literal

import trio

from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.bridges.kafka import (
    CONSUMER_GROUP_HEARTBEAT,
    broker_api_keys,
    connection_failure,
    open_kafka_bus,
)
from onex_actors.core import ConfigError, RoutingTable, build_routing_table
from onex_actors.devinfra import LocalKafka, LocalTansu, broker_answers, local_broker
from onex_actors.registry import ContractRegistry, FileRegistry
from onex_actors.runtime import Bus, Handler, Tracer

from ._config import HostConfig, KafkaSettings
from ._delivery_choice import check_delivery, transactional_id_for
from ._gc import raise_gc_threshold
from ._hand_over import hand_over
from ._handlers import open_handlers
from ._host import RuntimeHost
from ._kafka_clients import kafka_client_config, librdkafka_config
from ._listener import serve_listener
from ._tracing import open_host_tracer

__all__ = [
    "check_kafka_security_works",
    "ensure_local_broker",
    "group_protocol_for",
    "load_routing_table",
    "open_bus",
    "open_runtime_host",
]

logger = logging.getLogger("onex_actors.host")


def load_routing_table(runtime_id: str, registry: ContractRegistry) -> RoutingTable:
    """Read runtime ``runtime_id`` and the node contracts, and check them together."""
    runtime = registry.runtime_contract(runtime_id)
    nodes = registry.node_contracts()
    return build_routing_table(
        runtime,
        nodes,
        source=registry.source_of(runtime_id),
        node_sources={node_id: registry.source_of(node_id) for node_id in nodes},
    )


async def ensure_local_broker(
    settings: KafkaSettings, cache_dir: Path = Path(".cache")
) -> LocalKafka | LocalTansu | None:
    """Start a broker on 127.0.0.1 when the config asks for one and none answers.

    Return the broker started, if one was: it outlives the host (the next host starts
    at once), and the host says so when it stops.
    """
    bootstrap = settings.bootstrap_servers.split(",")[0]
    host, _, port = bootstrap.rpartition(":")
    if not settings.start_local_broker or host not in ("127.0.0.1", "localhost"):
        return None
    if await trio.to_thread.run_sync(broker_answers, bootstrap):
        return None
    broker = local_broker(settings.local_broker, int(port), cache_dir=cache_dir)
    logger.info("no broker answers on %s: starting a local %s broker", bootstrap, _kind(broker))
    await trio.to_thread.run_sync(broker.start)
    return broker


def _kind(broker: LocalKafka | LocalTansu) -> str:
    return "tansu" if isinstance(broker, LocalTansu) else "kafka"


@asynccontextmanager
async def open_bus(
    config: HostConfig, *, transactional_id: str | None = None
) -> AsyncIterator[Bus]:
    """Open the bus the config names for the duration of the block.

    ``transactional_id`` (``delivery: exactly_once``) makes its producer transactional.
    """
    check_delivery(config)
    if config.bus.kind == "inprocess":
        yield InProcessBus(partitions=config.bus.partitions)
        return
    started = await ensure_local_broker(config.kafka, config.cache_dir)
    try:
        await check_kafka_security_works(config.kafka)
        async with _open_kafka_client_bus(config, transactional_id) as bus:
            yield bus
    finally:
        if started is not None and started.pid() is not None:
            logger.info(
                "the local %s broker this host started keeps running on %s (pid %s): "
                "`onex broker down --port %d` stops it",
                _kind(started),
                started.bootstrap,
                started.pid(),
                started.port,
            )


@asynccontextmanager
async def _open_kafka_client_bus(
    config: HostConfig, transactional_id: str | None
) -> AsyncIterator[Bus]:
    if config.kafka.client == "confluent":
        async with _open_confluent_bus(config, transactional_id) as confluent:
            yield confluent
        return
    if config.kafka.group_protocol == "consumer":
        raise ConfigError(
            "kafka.group_protocol is 'consumer' (KIP-848), which kafka-python does not "
            "speak: set kafka.client: confluent, or kafka.group_protocol: classic"
        )
    async with open_kafka_bus(
        kafka_client_config(config.kafka),
        partitions=config.bus.partitions,
        create_topics=config.kafka.create_topics,
        max_poll_records=config.poll_max_records,
        session_timeout_ms=config.kafka.session_timeout_ms,
        max_request_bytes=config.kafka.max_request_bytes,
        stall_timeout_s=config.kafka.stall_timeout_s,
        transactional_id=transactional_id,
        transaction_timeout_ms=int(config.delivery.transaction_timeout_s * 1000),
        # a generated id is this process's alone: a fencing is a transaction timed out
        renew_when_fenced=config.delivery.transactional_id is None,
    ) as bus:
        yield bus


async def check_kafka_security_works(settings: KafkaSettings) -> None:
    """With TLS or SASL, connect once and raise one clear ``ConfigError`` if refused.

    Without it a wrong password or CA file shows only as the clients' retries and, 30 s
    later, "Unable to bootstrap". Plaintext connections are left to the clients.
    """
    if settings.security_protocol == "PLAINTEXT":
        return
    failure = await trio.to_thread.run_sync(
        connection_failure, kafka_client_config(settings), abandon_on_cancel=True
    )
    if failure is None:
        return
    where = f"Kafka at {settings.bootstrap_servers} ({settings.security_protocol})"
    if failure.kind == "tls":
        trusted = settings.ssl_cafile or "the system's CA bundle"
        raise ConfigError(
            f"{where}: the TLS handshake failed: {failure.detail}; check kafka.ssl_cafile "
            f"({trusted}) holds the CA that signed the brokers' certificates, and that "
            "bootstrap_servers names the hosts those certificates are for"
        )
    if failure.kind == "sasl":
        raise ConfigError(
            f"{where}: the brokers refused the SASL login of user {settings.sasl_username!r} "
            f"({settings.sasl_mechanism}): {failure.detail}; check kafka.sasl_username, "
            "kafka.sasl_mechanism and the password (ONEX_KAFKA__SASL_PASSWORD)"
        )
    raise ConfigError(
        f"{where}: no broker accepted a connection: {failure.detail}; check "
        "kafka.bootstrap_servers and kafka.security_protocol"
    )


async def group_protocol_for(settings: KafkaSettings) -> Literal["classic", "consumer"]:
    """Return the consumer group protocol the confluent client uses with these brokers.

    ``auto`` asks the bootstrap broker (ApiVersions, through kafka-python's admin
    client) whether it offers KIP-848's ``ConsumerGroupHeartbeat``.
    """
    if settings.group_protocol != "auto":
        return settings.group_protocol
    keys = await trio.to_thread.run_sync(broker_api_keys, kafka_client_config(settings))
    protocol: Literal["classic", "consumer"] = (
        "consumer" if CONSUMER_GROUP_HEARTBEAT in keys else "classic"
    )
    logger.info("consumer group protocol: %s (kafka.group_protocol: auto)", protocol)
    return protocol


@asynccontextmanager
async def _open_confluent_bus(
    config: HostConfig, transactional_id: str | None
) -> AsyncIterator[Bus]:
    try:
        from onex_actors.bridges.confluent import open_confluent_bus
    except ImportError:
        raise ConfigError(
            "kafka.client is 'confluent' but confluent-kafka is not installed: "
            "pip install 'onex-actors[confluent]', or set kafka.client: kafka-python"
        ) from None
    async with open_confluent_bus(
        librdkafka_config(config.kafka),
        group_protocol=await group_protocol_for(config.kafka),
        partitions=config.bus.partitions,
        create_topics=config.kafka.create_topics,
        max_poll_records=config.poll_max_records,
        session_timeout_ms=config.kafka.session_timeout_ms,
        max_request_bytes=config.kafka.max_request_bytes,
        stall_timeout_s=config.kafka.stall_timeout_s,
        transactional_id=transactional_id,
        transaction_timeout_ms=int(config.delivery.transaction_timeout_s * 1000),
        renew_when_fenced=config.delivery.transactional_id is None,
        changelog_config=kafka_client_config(config.kafka),
    ) as bus:
        yield bus


@asynccontextmanager
async def open_runtime_host(
    runtime_id: str,
    config: HostConfig,
    *,
    registry: ContractRegistry | None = None,
    bus: Bus | None = None,
    handlers: Mapping[str, Handler] | None = None,
    tracer: Tracer | None = None,
) -> AsyncIterator[RuntimeHost]:
    """Run a runtime host for the duration of the block, inside the caller's task tree.

    ``handlers`` replaces the handler of the named nodes (for tests and embedding);
    ``tracer`` the one ``config.tracing`` would make.
    Leaving the block shuts the host down gracefully: it stops consuming, drains what
    its nodes hold, commits and closes.
    """
    registry = registry or FileRegistry(config.contracts_dir)
    table = load_routing_table(runtime_id, registry)
    raise_gc_threshold(config.gc_threshold)
    async with AsyncExitStack() as stack:
        group_id = config.consumer_group or table.runtime.consumer_group or table.runtime_id
        hands_over = bus is None and config.bus.kind == "kafka"
        if bus is None:
            bus = await stack.enter_async_context(
                open_bus(config, transactional_id=transactional_id_for(config, group_id))
            )
        built = await stack.enter_async_context(
            open_handlers(table, config, overrides=handlers or {})
        )
        if tracer is None:
            tracer = await stack.enter_async_context(
                open_host_tracer(config.tracing, runtime_id, group_id)
            )
        host = RuntimeHost(table, bus, built, config, tracer=tracer)
        if hands_over:
            others = _other_runtime_groups(registry, group_id)
            host.before_join = partial(hand_over, table, config, group_id, others)
        async with trio.open_nursery() as nursery:
            await nursery.start(host.run)
            if config.http.listen is not None:
                host.listening = await nursery.start(serve_listener, host, config.http.listen)
            try:
                yield host
            finally:
                host.shutdown()


def _other_runtime_groups(registry: ContractRegistry, group_id: str) -> list[str]:
    """Return the consumer groups of the contract tree's other runtimes (their defaults)."""
    if not isinstance(registry, FileRegistry):
        return []
    groups = {
        runtime.consumer_group or runtime_id
        for runtime_id, runtime in registry.tree.runtimes.items()
    }
    return sorted(groups - {group_id})
