"""What the confluent bridge makes of librdkafka's messages, record or error."""

from __future__ import annotations

from confluent_kafka import KafkaError, Message

from onex_actors.bridges.confluent import unreadable_record
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
