"""Records at the edges of what Kafka lets a producer write, on a real broker.

Each is answered or dead-lettered, the host stays up, and its committed offsets reach
the end of every partition.
"""

from __future__ import annotations

import logging

import kafka.codec
import pytest
import trio
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
from tests.contracts import RUNTIME_ID, effect, registry
from tests.kafka_support import TEST_BROKER, TEST_CLIENT, NamespacedBus

from onex_actors.core import (
    EnvelopeStatus,
    OnexEnvelope,
    cmd_topic,
    encode_envelope,
    evt_topic,
    new_command,
)
from onex_actors.testing import HostHarness, committed_offsets, end_offsets, open_test_host

pytestmark = pytest.mark.integration

CODECS = ("gzip", "snappy", "lz4", "zstd")


def _produce(
    bootstrap: str,
    topic: str,
    records: list[tuple[bytes | None, list[tuple[str, bytes]]]],
    *,
    compression: str | None = None,
) -> list[tuple[int, int]]:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, compression_type=compression, linger_ms=0, acks="all"
    )
    try:
        futures = [
            producer.send(topic, value=value, key=b"k", headers=headers)
            for value, headers in records
        ]
        producer.flush()
        return [(f.get().partition, f.get().offset) for f in futures]
    finally:
        producer.close()


async def _committed_to_end(bootstrap: str, bus: NamespacedBus, topic: str) -> None:
    group = f"{bus.namespace}-{RUNTIME_ID}"
    ends = {p: end for p, end in end_offsets(bootstrap, topic).items() if end > 0}
    committed: dict[int, int] = {}
    with trio.move_on_after(30):
        while True:
            committed = await trio.to_thread.run_sync(committed_offsets, bootstrap, group, topic)
            # at or past: tansu 0.6 reports an end offset one short after value-less records
            if all(committed.get(p, -1) >= end for p, end in ends.items()):
                return
            await trio.sleep(0.2)
    raise AssertionError(f"commits {committed} never reached the ends {ends} of {topic}")


def _runtime_dead_letters(host: HostHarness, error_type: str) -> list[OnexEnvelope]:
    return [
        d
        for d in host.dead_letters(RUNTIME_ID)
        if d.error is not None and d.error.type == error_type
    ]


async def test_tombstones_and_headers_only_records_are_dead_lettered(
    kafka_bus: NamespacedBus, kafka_bootstrap: str
) -> None:
    topic = kafka_bus.topic(cmd_topic("echo-node"))
    async with open_test_host(
        RUNTIME_ID, contracts=registry(effect("echo-node")), bus=kafka_bus
    ) as host:
        sent = await trio.to_thread.run_sync(
            lambda: _produce(kafka_bootstrap, topic, [(None, []), (None, [("type", b"cmd")])])
        )
        await host.collector.wait_until(lambda: len(_runtime_dead_letters(host, "no_value")) == 2)
        after = await host.request("echo-node", {"still": "alive"})
        assert after.status is EnvelopeStatus.OK
        await _committed_to_end(kafka_bootstrap, kafka_bus, topic)
    letters = _runtime_dead_letters(host, "no_value")
    assert sorted(_source(d) for d in letters) == sorted(sent)
    assert all("tombstone" in d.error.message for d in letters if d.error)
    assert all(d.payload["raw"] is None for d in letters)


@pytest.mark.parametrize("codec", CODECS)
async def test_every_kafka_codec_decodes(
    kafka_bus: NamespacedBus, kafka_bootstrap: str, codec: str
) -> None:
    topic = kafka_bus.topic(cmd_topic("echo-node"))
    command = new_command("echo-node", {"codec": codec, "pad": "x" * 2000})
    async with open_test_host(
        RUNTIME_ID, contracts=registry(effect("echo-node")), bus=kafka_bus
    ) as host:
        await trio.to_thread.run_sync(
            lambda: _produce(
                kafka_bootstrap, topic, [(encode_envelope(command), [])], compression=codec
            )
        )
        result = await host.result(command)
    assert result.status is EnvelopeStatus.OK
    assert result.payload == command.payload


@pytest.mark.skipif(
    TEST_CLIENT == "confluent",
    reason="librdkafka reads every codec a broker accepts; its per-record errors become "
    "dead letters the same way (tests/unit/test_confluent_records.py)",
)
async def test_a_record_the_client_cannot_read_is_dead_lettered_and_skipped(
    kafka_bus: NamespacedBus, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An lz4 batch read by a client without lz4: dead letters, then consumption goes on."""
    topic = kafka_bus.topic(cmd_topic("echo-node"))
    commands = [new_command("echo-node", {"i": i}) for i in range(3)]
    await kafka_bus.ensure_topics([cmd_topic("echo-node")])
    # One lz4 batch of three records on one partition, written before the host starts.
    sent = await trio.to_thread.run_sync(
        lambda: _produce(
            kafka_bootstrap, topic, [(encode_envelope(c), []) for c in commands], compression="lz4"
        )
    )
    assert len({partition for partition, _ in sent}) == 1
    monkeypatch.setattr(kafka.codec, "has_lz4", lambda: False)
    async with open_test_host(
        RUNTIME_ID, contracts=registry(effect("echo-node")), bus=kafka_bus
    ) as host:
        await host.collector.wait_until(
            lambda: len(_runtime_dead_letters(host, "unreadable_record")) == len(sent)
        )
        after = await host.request("echo-node", {"after": "lz4"})
        assert after.status is EnvelopeStatus.OK
        await _committed_to_end(kafka_bootstrap, kafka_bus, topic)
    letters = _runtime_dead_letters(host, "unreadable_record")
    assert sorted(_source(d) for d in letters) == sorted(sent)
    for letter in letters:
        assert letter.error is not None
        assert "UnsupportedCodecError" in letter.error.message
        assert f"partition {sent[0][0]} offset {_source(letter)[1]}" in letter.error.message
    assert not any(host.results_of(c) for c in commands)


def _source(letter: OnexEnvelope) -> tuple[int, int]:
    source = letter.payload["source"]
    assert isinstance(source, dict)
    partition, offset = source["partition"], source["offset"]
    assert isinstance(partition, int)
    assert isinstance(offset, int)
    return partition, offset


async def _answered_too_large(host: HostHarness, command: OnexEnvelope) -> None:
    result = await host.result(command)
    assert result.status is EnvelopeStatus.ERROR
    assert result.error is not None
    assert result.error.type == "result_too_large"
    await host.collector.wait_until(lambda: bool(host.dead_letters("echo-node")))
    (letter,) = host.dead_letters("echo-node")
    assert letter.causation_id == command.envelope_id
    assert letter.error is not None
    assert letter.error.type == "result_too_large"
    assert "source" in letter.payload


async def test_a_result_over_the_producer_limit_is_an_error_event_and_commits_go_on(
    kafka_bus: NamespacedBus, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The reported case: a command just under 1 MiB whose echo is over the producer's limit."""
    topic = kafka_bus.topic(cmd_topic("echo-node"))
    big = new_command("echo-node", {"blob": ""})
    pad = 1024 * 1024 - 200 - len(encode_envelope(big))
    big = new_command("echo-node", {"blob": "x" * pad})
    caplog.set_level(logging.INFO, logger="onex_actors.runtime")
    async with open_test_host(
        RUNTIME_ID, contracts=registry(effect("echo-node")), bus=kafka_bus
    ) as host:

        def produce_big() -> None:
            producer = KafkaProducer(
                bootstrap_servers=kafka_bootstrap,
                compression_type="gzip",
                max_request_size=2 * 1024 * 1024,
            )
            producer.send(topic, value=encode_envelope(big), key=b"big").get(timeout=30)
            producer.close()

        await trio.to_thread.run_sync(produce_big)
        await _answered_too_large(host, big)
        after = await host.request("echo-node", {"small": True})
        assert after.status is EnvelopeStatus.OK
        await _committed_to_end(kafka_bootstrap, kafka_bus, topic)
    assert "runtime_stopped drained=True acknowledged=True" in caplog.text


def _set_topic_limit(bootstrap: str, topic: str, limit: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(limit)})]
        )
    finally:
        admin.close()


@pytest.mark.skipif(TEST_BROKER == "tansu", reason="tansu keeps no topic configs")
async def test_a_topic_limit_read_at_start_up_bounds_results(
    kafka_bus: NamespacedBus, kafka_bootstrap: str
) -> None:
    await kafka_bus.ensure_topics([evt_topic("echo-node")])
    await trio.to_thread.run_sync(
        _set_topic_limit, kafka_bootstrap, kafka_bus.topic(evt_topic("echo-node")), 20_000
    )
    async with open_test_host(
        RUNTIME_ID, contracts=registry(effect("echo-node")), bus=kafka_bus
    ) as host:
        assert kafka_bus.record_limit(evt_topic("echo-node")) == 20_000
        command = await host.send("echo-node", {"blob": "x" * 30_000})
        await _answered_too_large(host, command)
        assert (await host.request("echo-node", {"small": True})).status is EnvelopeStatus.OK


@pytest.mark.skipif(TEST_BROKER == "tansu", reason="tansu keeps no topic configs")
async def test_a_topic_created_at_start_up_has_its_limit_read_too(
    kafka_bus: NamespacedBus, caplog: pytest.LogCaptureFixture
) -> None:
    """Asked right after its creation, a broker may not know the topic yet: asked again."""
    caplog.set_level(logging.INFO, logger="onex_actors.kafka")
    fresh = [evt_topic(f"fresh-{n}") for n in range(3)]
    await kafka_bus.ensure_topics(fresh)
    assert all(kafka_bus.topic(t) in kafka_bus.inner.topic_limits for t in fresh)  # type: ignore[attr-defined]
    assert "unknown" not in caplog.text


@pytest.mark.skipif(TEST_BROKER == "tansu", reason="tansu keeps no topic configs")
async def test_a_result_the_broker_refuses_is_replaced_by_an_error_event(
    kafka_bus: NamespacedBus, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The limit drops after start-up: the broker's refusal, not our check, catches it."""
    caplog.set_level(logging.INFO, logger="onex_actors.runtime")
    async with open_test_host(
        RUNTIME_ID, contracts=registry(effect("echo-node")), bus=kafka_bus
    ) as host:
        await trio.to_thread.run_sync(
            _set_topic_limit, kafka_bootstrap, kafka_bus.topic(evt_topic("echo-node")), 20_000
        )
        command = await host.send("echo-node", {"blob": "x" * 30_000})
        await _answered_too_large(host, command)
        assert (await host.request("echo-node", {"small": True})).status is EnvelopeStatus.OK
    assert host.host.outbox.failed >= 1  # records aborted with it were produced again
    assert "runtime_stopped drained=True acknowledged=True" in caplog.text
