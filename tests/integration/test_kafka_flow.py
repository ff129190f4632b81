"""The runtime over a real Kafka broker."""

from __future__ import annotations

from tests.contracts import RUNTIME_ID, effect, registry
from tests.kafka_support import NamespacedBus

from onex_actors.core import EnvelopeStatus
from onex_actors.testing import open_test_host


async def test_echo_over_kafka(kafka_bus: NamespacedBus) -> None:
    async with open_test_host(
        RUNTIME_ID, contracts=registry(effect("echo-node")), bus=kafka_bus
    ) as host:
        command = await host.send("echo-node", {"hello": "kafka"})
        result = await host.result(command)
    assert result.status is EnvelopeStatus.OK
    assert result.payload == {"hello": "kafka"}
    assert result.causation_id == command.envelope_id
