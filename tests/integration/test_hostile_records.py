"""Records at the edges of what Kafka lets a producer write, on a real broker.

Each is answered or dead-lettered, the host stays up, and its committed offsets reach
the end of every partition.
"""

from __future__ import annotations

import kafka.codec
import pytest
import trio
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from tests.contracts import RUNTIME_ID, effect, registry
from tests.kafka_support import NamespacedBus

from onex_actors.core import (
    EnvelopeStatus,
    OnexEnvelope,
    cmd_topic,
    encode_envelope,
    new_command,
)
from onex_actors.testing import HostHarness, committed_offsets, open_test_host

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


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [KafkaTopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


async def _committed_to_end(bootstrap: str, bus: NamespacedBus, topic: str) -> None:
    group = f"{bus.namespace}-{RUNTIME_ID}"
    ends = {p: end for p, end in _end_offsets(bootstrap, topic).items() if end > 0}
    with trio.fail_after(30):
        while True:
            committed = await trio.to_thread.run_sync(committed_offsets, bootstrap, group, topic)
            if all(committed.get(p, -1) == end for p, end in ends.items()):
                return
            await trio.sleep(0.2)


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
