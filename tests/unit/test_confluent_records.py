"""What the confluent bridge makes of librdkafka's messages, record or error."""

from __future__ import annotations

import struct

from confluent_kafka import Consumer, KafkaError, Message

from onex_actors.bridges.confluent import group_generation, unreadable_record
from onex_actors.runtime import Record

TOPIC = "onex.app.local.global.cmd.node.echo-node.v1"


def test_an_error_about_one_record_becomes_a_record_to_dead_letter() -> None:
    corrupt = Message(
        topic=TOPIC, partition=2, offset=41, error=KafkaError(KafkaError._BAD_MSG, "CRC mismatch")
    )
    record = unreadable_record(corrupt)
    assert isinstance(record, Record)
    assert (record.topic, record.partition, record.offset) == (TOPIC, 2, 41)
    assert record.unreadable is not None
    assert "_BAD_MSG" in record.unreadable
    assert "CRC mismatch" in record.unreadable


def test_errors_about_a_partition_or_a_connection_are_not_records() -> None:
    no_offset = Message(
        topic=TOPIC, partition=0, offset=-1001, error=KafkaError(KafkaError._TRANSPORT, "down")
    )
    no_topic = Message(error=KafkaError(KafkaError._ALL_BROKERS_DOWN, "all brokers down"))
    assert unreadable_record(no_offset) is None
    assert unreadable_record(no_topic) is None
    assert unreadable_record(Message(topic=TOPIC, partition=0, offset=3, value=b"{}")) is None


class FakeMetadata:
    def __init__(self, topics: list[str]) -> None:
        self.topics = dict.fromkeys(topics)


class FakeConsumer:
    """Answers ``list_topics`` with whatever topics the cluster has now."""

    def __init__(self, topics: list[str]) -> None:
        self.cluster = topics
        self.calls = 0

    def list_topics(self, timeout: float) -> FakeMetadata:
        self.calls += 1
        return FakeMetadata(self.cluster)


def test_a_kip_848_subscription_follows_the_matching_topics_the_cluster_has() -> None:
    from onex_actors.bridges.confluent._subscription import ResolvedSubscription
    from onex_actors.core import TopicPattern

    other = "onex.app.local.acme.evt.node.echo-node.v1"
    consumer = FakeConsumer([TOPIC, other])
    resolved = ResolvedSubscription([TopicPattern("onex.app.local.*.cmd.node.#")], refresh_s=0.0)
    assert resolved.changed(consumer) == (TOPIC,)  # type: ignore[arg-type]
    assert resolved.changed(consumer) is None  # type: ignore[arg-type]
    newcomer = "onex.app.local.acme.cmd.node.echo-node.v1"
    consumer.cluster = [TOPIC, other, newcomer]
    assert resolved.changed(consumer) == (newcomer, TOPIC)  # type: ignore[arg-type]
    waiting = ResolvedSubscription([TopicPattern("onex.app.local.*.cmd.node.#")], refresh_s=60)
    assert waiting.changed(consumer) is not None  # type: ignore[arg-type]
    calls = consumer.calls
    assert waiting.changed(consumer) is None  # type: ignore[arg-type]
    assert consumer.calls == calls, "looked again before refresh_s passed"


def test_the_generation_and_member_are_read_from_librdkafkas_group_metadata() -> None:
    fresh = Consumer({"group.id": "g", "bootstrap.servers": "127.0.0.1:1"})
    try:
        assert group_generation(fresh.consumer_group_metadata()) == (-1, "")
    finally:
        fresh.close()
    written = b"CGMDv2:" + struct.pack("=i", 7) + b"group\x00member-1\x00\x01"
    assert group_generation(written) == (7, "member-1")
    assert group_generation(b"something else") == (-1, "")
    assert group_generation(object()) == (-1, "")
