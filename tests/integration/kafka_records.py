"""Producing commands and reading results directly with kafka-python, for crash tests."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence

import attrs
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition

from onex_actors import testing as workload
from onex_actors.core import (
    OnexEnvelope,
    cmd_topic,
    decode_envelope,
    encode_envelope,
    evt_topic,
    new_command,
    record_headers,
    record_key,
)


@attrs.frozen
class Sent:
    command: OnexEnvelope
    partition: int
    offset: int


def create_topics(bootstrap: str, node: str) -> None:
    workload.create_topics(bootstrap, [cmd_topic(node), evt_topic(node)])


def produce(
    bootstrap: str, node: str, payloads: Sequence[dict[str, object]], key: str | None = None
) -> list[Sent]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        commands = [
            new_command(node, p, headers={"partition_key": key} if key else {}) for p in payloads
        ]
        futures = [
            producer.send(
                cmd_topic(node),
                value=encode_envelope(c),
                key=record_key(c),
                headers=record_headers(c),
            )
            for c in commands
        ]
        producer.flush()
        return [
            Sent(c, f.get().partition, f.get().offset)
            for c, f in zip(commands, futures, strict=True)
        ]
    finally:
        producer.close()


def committed(bootstrap: str, group: str, node: str) -> dict[int, int]:
    return workload.committed_offsets(bootstrap, group, cmd_topic(node))


class Results:
    """Reads a node's evt topic from the beginning, counting results per command."""

    def __init__(self, bootstrap: str, node: str) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        topic = evt_topic(node)
        self.partitions = [
            KafkaTopicPartition(topic, p)
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)
        self.by_cause: Counter[str] = Counter()
        self.events: list[OnexEnvelope] = []

    def read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._poll()

    def read_until(self, done: Callable[[Results], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not done(self):
            assert time.monotonic() < deadline, f"timed out with {len(self.by_cause)} answered"
            self._poll()

    def read_to_end(self) -> None:
        ends = self.consumer.end_offsets(self.partitions)
        while any(self.consumer.position(tp) < end for tp, end in ends.items()):
            self._poll()

    def _poll(self) -> None:
        for records in self.consumer.poll(timeout_ms=100).values():
            for record in records:
                event = decode_envelope(record.value)
                self.events.append(event)
                self.by_cause[str(event.causation_id)] += 1

    def close(self) -> None:
        self.consumer.close()
