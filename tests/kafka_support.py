"""Kafka test support: a broker per session and per-test topic namespaces.

Every test runs against the same broker, so each test's bus rewrites the ``env``
segment of onex topic names (``onex.app.local...`` → ``onex.app.t1a2b3...``) on the
way out and back on the way in. The runtime under test sees ordinary topics.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal, cast

import pytest

from onex_actors.runtime import Bus
from onex_actors.testing import NamespacedBus, NamespacedConsumer, new_namespace

TEST_BROKER = os.environ.get("ONEX_TEST_BROKER", "kafka")
"""The local broker the suite starts when ONEX_KAFKA_BOOTSTRAP names none: kafka or tansu."""

TEST_CLIENT = os.environ.get("ONEX_TEST_KAFKA_CLIENT", "kafka-python")
"""The Kafka client the integration tier's buses use: kafka-python or confluent."""

GROUP_PROTOCOL = cast(
    'Literal["auto", "classic", "consumer"]', os.environ.get("ONEX_TEST_GROUP_PROTOCOL", "auto")
)
"""The confluent client's consumer group protocol (auto: KIP-848's where the broker has it)."""

DEFAULT_TIER = TEST_BROKER == "kafka" and TEST_CLIENT == "kafka-python"
"""Whether this run is the default tier: Apache Kafka through kafka-python."""

KAFKA_FREE = pytest.mark.skipif(
    not DEFAULT_TIER,
    reason="touches no Kafka: runs once, in the default tier",
)
"""For tests that touch no Kafka, so the tansu and confluent tiers would only repeat them."""

SESSION_TIMEOUT_MS = 2_000 if TEST_BROKER == "tansu" else 10_000
"""Consumer-group session for test hosts: tansu spends about half of it on every join."""


@asynccontextmanager
async def open_test_kafka_bus(
    bootstrap: str,
    *,
    session_timeout_ms: int = SESSION_TIMEOUT_MS,
    transactional_id: str | None = None,
    transaction_timeout_ms: int = 10_000,
) -> AsyncIterator[Bus]:
    """A bus on ``bootstrap`` through the client ONEX_TEST_KAFKA_CLIENT names.

    ``transactional_id`` makes its producer transactional (``delivery: exactly_once``).
    """
    from onex_actors.app import KafkaSettings, group_protocol_for

    transactional = {
        "transactional_id": transactional_id,
        "transaction_timeout_ms": transaction_timeout_ms,
    }
    if TEST_CLIENT == "confluent":
        from onex_actors.bridges.confluent import open_confluent_bus

        settings = KafkaSettings(bootstrap_servers=bootstrap, group_protocol=GROUP_PROTOCOL)
        async with open_confluent_bus(
            {"bootstrap.servers": bootstrap},
            group_protocol=await group_protocol_for(settings),
            max_poll_records=500,
            session_timeout_ms=session_timeout_ms,
            changelog_config={"bootstrap_servers": bootstrap},
            **transactional,
        ) as confluent:
            yield confluent
        return
    from onex_actors.bridges.kafka import open_kafka_bus

    async with open_kafka_bus(
        {"bootstrap_servers": bootstrap},
        max_poll_records=500,
        session_timeout_ms=session_timeout_ms,
        **transactional,
    ) as bus:
        yield bus


__all__ = [
    "DEFAULT_TIER",
    "GROUP_PROTOCOL",
    "KAFKA_FREE",
    "SESSION_TIMEOUT_MS",
    "TEST_BROKER",
    "TEST_CLIENT",
    "NamespacedBus",
    "NamespacedConsumer",
    "new_namespace",
    "open_test_kafka_bus",
]
