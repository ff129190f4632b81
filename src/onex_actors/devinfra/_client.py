"""Synchronous Kafka helpers for command-line clients: request a result, follow topics.

The runtime itself never uses these; it goes through the threaded bridges.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from onex_actors.core import (
    BusError,
    EnvelopeError,
    KeyState,
    OnexEnvelope,
    Topic,
    TopicError,
    TopicPattern,
    cmd_topic,
    decode_envelope,
    encode_envelope,
    evt_topic,
    record_headers,
    record_key,
)

__all__ = ["StateRecord", "command_topic_nodes", "follow", "request"]


@attrs.frozen
class StateRecord:
    """A changelog record: a reducer key's (or a workflow instance's) state."""

    key: str
    """The record's key, ``<tenant>/<key>``."""
    state: KeyState | None
    """``None``: the key was deleted (a tombstone), or ``problem`` says why it is unread."""
    problem: str | None = None


def _state_record(key: bytes | None, value: bytes | None) -> StateRecord:
    name = key.decode("utf-8", "replace") if key is not None else "?"
    if value is None:
        return StateRecord(name, None)
    try:
        return StateRecord(name, KeyState.from_bytes(value))
    except ValueError as exc:
        return StateRecord(name, None, f"not a state record: {exc}")


@functools.lru_cache(maxsize=1024)
def _is_state_topic(topic: str) -> bool:
    try:
        return Topic.parse(topic).type == "state"
    except TopicError:
        return False


def _ensure(client: Mapping[str, Any], topics: list[str], partitions: int) -> list[str]:
    """Create the missing ``topics``; return them."""
    admin = KafkaAdminClient(**client)
    try:
        missing = [t for t in topics if t not in set(admin.list_topics())]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(t, partitions, 1) for t in missing])
    finally:
        admin.close()
    return missing


def command_topic_nodes(client: Mapping[str, Any]) -> set[str]:
    """Return the ids of the nodes (and runtimes) that have a command topic on the cluster.

    A runtime creates the command topics of what it hosts as it starts, so a node with
    none has never been hosted there.
    """
    try:
        admin = KafkaAdminClient(**client)
    except (KafkaError, OSError, ValueError) as exc:
        raise BusError(f"cannot reach Kafka at {client.get('bootstrap_servers')}: {exc}") from None
    try:
        topics = admin.list_topics()
    except KafkaError as exc:
        raise BusError(f"listing topics failed: {type(exc).__name__}: {exc}") from None
    finally:
        admin.close()
    nodes = set()
    for name in topics:
        with contextlib.suppress(TopicError):
            topic = Topic.parse(name)
            if (topic.plane, topic.type, topic.target) == ("app", "cmd", "node"):
                nodes.add(topic.slug)
    return nodes


def request(
    client: Mapping[str, Any],
    command: OnexEnvelope,
    *,
    wait: bool = True,
    timeout_s: float = 30.0,
    partitions: int = 4,
    notice: Callable[[str], object] | None = None,
    result_from: str | None = None,
) -> OnexEnvelope | None:
    """Send ``command`` to its node; with ``wait``, return its first answer.

    ``result_from`` names another node whose result ends the flow the command starts
    (chained by ``then``, which keeps the correlation id): its result is awaited instead.

    ``notice`` hears at once when the node's command topic did not exist: no running
    runtime hosts the node then (a runtime creates its nodes' command topics), so the
    command waits for one; a runtime with ``consume: matching`` dead-letters it only once
    it notices the new topic (seconds later).

    The answer is the node's result event, or a dead letter of the command (an unknown
    node, a node not hosted, a bad payload: a runtime answers those on a dead-letter topic
    at once, and waiting out ``timeout_s`` for an event would hide why). Reads the node's
    evt topic and every dead-letter topic from their current ends, so only new envelopes
    are scanned. Returns ``None`` when nothing arrived within ``timeout_s``.
    """
    node = command.node_id
    answering = result_from or node
    try:
        created = _ensure(
            client, list(dict.fromkeys([cmd_topic(node), evt_topic(answering)])), partitions
        )
        consumer = KafkaConsumer(
            enable_auto_commit=False, group_id=None, isolation_level="read_committed", **client
        )
    except (KafkaError, OSError) as exc:
        raise BusError(f"cannot reach Kafka at {client.get('bootstrap_servers')}: {exc}") from None
    try:
        if wait:
            topics = [evt_topic(answering), *(t for t in consumer.topics() if ".dlq.node." in t)]
            tps = [
                KafkaTopicPartition(topic, p)
                for topic in topics
                for p in consumer.partitions_for_topic(topic) or ()
            ]
            consumer.assign(tps)
            consumer.seek_to_end(*tps)
            for tp in tps:
                consumer.position(tp)
        producer = KafkaProducer(acks="all", **client)
        try:
            producer.send(
                cmd_topic(node),
                value=encode_envelope(command),
                key=record_key(command),
                headers=record_headers(command),
            ).get(timeout=timeout_s)
        finally:
            producer.close()
        if cmd_topic(node) in created and notice is not None:
            notice(
                f"{cmd_topic(node)} did not exist, so no running runtime hosts {node!r} "
                "(a runtime creates the command topics of the nodes it hosts); the command "
                "waits there for one that does (a runtime with 'consume: matching' "
                "dead-letters it once it sees the topic)"
            )
        if not wait:
            return None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    try:
                        event = decode_envelope(record.value)
                    except EnvelopeError:
                        continue
                    if event.correlation_id != command.correlation_id:
                        continue
                    # a dead letter of a later node of the flow (a workflow's step) is not
                    # this command's answer; one of the command itself is
                    if ".dlq." not in record.topic or event.causation_id == command.envelope_id:
                        return event
        return None
    except KafkaError as exc:
        raise BusError(f"Kafka request to {node!r} failed: {type(exc).__name__}: {exc}") from None
    finally:
        consumer.close()


def follow(
    client: Mapping[str, Any],
    pattern: str,
    *,
    from_beginning: bool = False,
    refresh_s: float = 2.0,
    isolation_level: str = "read_committed",
) -> Iterator[tuple[str, int, int, OnexEnvelope | EnvelopeError | StateRecord]]:
    """Yield ``(topic, partition, offset, item)`` from matching topics.

    The item is the record's envelope, or why it is none; a changelog's record (a
    ``state`` topic) is a :class:`StateRecord`.

    Topics that appear later are picked up every ``refresh_s``. Runs until the caller stops.
    Only records of committed transactions are read unless ``isolation_level`` says
    ``read_uncommitted``.
    """
    matcher = TopicPattern(pattern)
    try:
        consumer = KafkaConsumer(
            enable_auto_commit=False, group_id=None, isolation_level=isolation_level, **client
        )
    except (KafkaError, OSError) as exc:
        raise BusError(f"cannot reach Kafka at {client.get('bootstrap_servers')}: {exc}") from None
    assigned: set[KafkaTopicPartition] = set()
    next_refresh = 0.0
    try:
        while True:
            if time.monotonic() >= next_refresh:
                next_refresh = time.monotonic() + refresh_s
                new = {
                    KafkaTopicPartition(topic, p)
                    for topic in consumer.topics()
                    if matcher.matches(topic)
                    for p in consumer.partitions_for_topic(topic) or ()
                } - assigned
                if new:
                    assigned |= new
                    consumer.assign(sorted(assigned, key=lambda tp: (tp.topic, tp.partition)))
                    if from_beginning:
                        consumer.seek_to_beginning(*new)
                    else:
                        consumer.seek_to_end(*new)
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    item: OnexEnvelope | EnvelopeError | StateRecord
                    if _is_state_topic(record.topic):
                        item = _state_record(record.key, record.value)
                    else:
                        try:
                            item = decode_envelope(record.value)
                        except EnvelopeError as exc:
                            item = exc
                    yield record.topic, record.partition, record.offset, item
    except KafkaError as exc:
        raise BusError(f"following {pattern!r} failed: {type(exc).__name__}: {exc}") from None
    finally:
        consumer.close()
