"""KIP-848 groups on librdkafka: the session timeout is set on the group.

The commit of done offsets before a revocation is in the conformance suite
(``test_consumer_conformance.py``), for both clients.
"""

from __future__ import annotations

import pytest
import trio
from tests.kafka_support import SESSION_TIMEOUT_MS, TEST_CLIENT, NamespacedBus

from onex_actors.core import TopicPattern

pytestmark = pytest.mark.skipif(
    TEST_CLIENT != "confluent", reason="KIP-848 groups are librdkafka's (kafka.client: confluent)"
)

TOPIC = "onex.app.local.global.cmd.node.revoke-node.v1"
RECORDS = 40


async def test_with_kip_848_the_session_timeout_is_set_on_the_group(
    kafka_bus: NamespacedBus, kafka_bootstrap: str
) -> None:
    from onex_actors.bridges.confluent import ConfluentBus

    inner = kafka_bus.inner
    assert isinstance(inner, ConfluentBus)
    if inner.group_protocol != "consumer":
        pytest.skip("the broker does not offer KIP-848's consumer group protocol")
    await kafka_bus.ensure_topics([TOPIC])
    async with kafka_bus.consumer([TopicPattern(TOPIC)], "sessions"):
        group = f"{kafka_bus.namespace}-sessions"
        configs = await trio.to_thread.run_sync(_group_configs, kafka_bootstrap, group)
    assert configs["consumer.session.timeout.ms"] == str(SESSION_TIMEOUT_MS)


def _group_configs(bootstrap: str, group: str) -> dict[str, str]:
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.admin._config import ConfigResource

    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.GROUP, group)
    (future,) = admin.describe_configs([resource]).values()
    return {name: str(entry.value) for name, entry in future.result().items()}
