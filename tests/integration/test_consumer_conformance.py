"""Both Kafka clients behave the same behind the consumer core, on Apache Kafka.

The same scenarios run through kafka-python and librdkafka: what a host sees of its
consumer (assignment and revocation, the commit of done offsets before partitions go,
a stalled partition's error, pausing, reading again from the last commit) must not
depend on the client. Each test opens its own bus of each client on the session's
broker, so the suite runs once, in the default tier.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from kafka import KafkaAdminClient
from kafka.admin import NewPartitions
from tests.kafka_support import DEFAULT_TIER, SESSION_TIMEOUT_MS, NamespacedBus

from onex_actors.bridges._consumer_client import Fetched
from onex_actors.bridges._consumer_core import ConsumerCore
from onex_actors.core import BusError, TopicPattern
from onex_actors.runtime import OutboundRecord, Record, RewindableConsumer, TopicPartition
from onex_actors.testing import NamespacedConsumer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not DEFAULT_TIER,
        reason="runs both clients itself, once, on Apache Kafka (the default tier)",
    ),
]

CLIENTS = ["kafka-python", "confluent"]
TOPIC = "onex.app.local.global.cmd.node.conformance-node.v1"
RECORDS = 40


@asynccontextmanager
async def client_bus(client: str, bootstrap: str, **settings: Any) -> AsyncIterator[NamespacedBus]:
    """A namespaced bus of ``client`` on ``bootstrap`` (classic groups for both)."""
    if client == "confluent":
        from onex_actors.bridges.confluent import open_confluent_bus

        async with open_confluent_bus(
            {"bootstrap.servers": bootstrap},
            group_protocol="classic",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            **settings,
        ) as bus:
            yield NamespacedBus(bus)
        return
    from onex_actors.bridges.kafka import open_kafka_bus

    async with open_kafka_bus(
        {"bootstrap_servers": bootstrap}, session_timeout_ms=SESSION_TIMEOUT_MS, **settings
    ) as bus:
        yield NamespacedBus(bus)


def core_of(consumer: object) -> ConsumerCore:
    """The consumer core behind a namespaced consumer."""
    assert isinstance(consumer, NamespacedConsumer)
    assert isinstance(consumer.inner, ConsumerCore)
    return consumer.inner


async def publish_spread(bus: NamespacedBus, count: int) -> None:
    """Publish ``count`` records under distinct keys (spread over every partition)."""
    await bus.ensure_topics([TOPIC])
    await bus.publish([OutboundRecord(TOPIC, b"v%d" % i, key=b"k%d" % i) for i in range(count)])


@pytest.mark.parametrize("client", CLIENTS)
async def test_partitions_moved_to_a_new_member_are_committed_at_what_was_done(
    client: str, kafka_bootstrap: str
) -> None:
    async with client_bus(client, kafka_bootstrap) as bus:
        await publish_spread(bus, RECORDS)
        done: dict[TopicPartition, int] = {}
        events = _RecordedEvents(done)
        patterns = [TopicPattern(TOPIC)]
        async with (
            bus.consumer(patterns, "movers", partitions=events) as first,
            trio.open_nursery() as nursery,
        ):
            with trio.fail_after(30):
                while sum(done.values()) < RECORDS:
                    for record in await first.poll(500):
                        tp = record.topic_partition
                        done[tp] = max(done.get(tp, 0), record.offset + 1)
            first_core = core_of(first)
            owned_alone = set(first_core.assignment)
            nursery.start_soon(_keep_polling, first)  # rebalance callbacks run in its fetch
            async with bus.consumer(patterns, "movers") as second:
                second_core = core_of(second)
                with trio.fail_after(60):
                    while first_core.assignment & second_core.assignment or not (
                        second_core.assignment
                        and first_core.assignment | second_core.assignment == owned_alone
                    ):
                        await _either_changes(first_core, second_core)
                moved = sorted(second_core.assignment)
                kept = set(first_core.assignment)
                seen = list(events.seen)
                group = f"{bus.namespace}-movers"
                committed = await trio.to_thread.run_sync(_committed, kafka_bootstrap, group, moved)
            nursery.cancel_scope.cancel()
    assert len(owned_alone) == 4, "the only member held every partition"
    assert moved, "the second member got no partitions"
    assert kept, "the first member kept none"
    assert first_core.rebalances >= 1, "the first member saw no revocation"
    assert first_core.revoke_commits >= 1, "nothing was committed before partitions went"
    real = {TopicPartition(bus.topic(tp.topic), tp.partition): o for tp, o in done.items()}
    asked = {TopicPartition(bus.topic(tp.topic), tp.partition) for tp in events.asked}
    assert set(moved) <= asked, "a partition went without its done offset asked for"
    # the runtime saw the same lifecycle whichever the client: every partition assigned
    # first, the moved ones revoked, what the member holds at the end assigned last
    kind, first_assigned = seen[0]
    assert kind == "assigned"
    assert {TopicPartition(bus.topic(tp.topic), tp.partition) for tp in first_assigned} == (
        owned_alone
    )
    assert {
        TopicPartition(bus.topic(tp.topic), tp.partition)
        for kind, tps in seen
        if kind == "revoked"
        for tp in tps
    } >= set(moved)
    assert _held_after(seen, bus) == kept
    assert committed == {tp: real[tp] for tp in moved}, (
        "each partition the second member took was committed at what the first had done"
    )


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_partition_the_client_stops_reading_stops_the_consumer_loudly(
    client: str, kafka_bootstrap: str
) -> None:
    async with client_bus(client, kafka_bootstrap, stall_timeout_s=2) as bus:
        await publish_spread(bus, RECORDS)
        async with bus.consumer([TopicPattern(TOPIC)], "stallers") as consumer:
            read: list[Record] = []
            with trio.fail_after(30):
                while len(read) < RECORDS:  # every partition read from once
                    read += await consumer.poll(500)
            core = core_of(consumer)
            fetch = core.client.fetch

            def wedged(timeout_s: float, max_records: int) -> Fetched:
                # the client stops handing out records of partitions nobody paused
                assigned = core.client.assignment()
                if assigned:
                    core.client.pause(assigned)
                return fetch(timeout_s, max_records)

            core.client.fetch = wedged  # type: ignore[method-assign]
            await publish_spread(bus, RECORDS)
            with trio.fail_after(60), pytest.raises(BusError) as raised:
                await _keep_polling(consumer)
    message = str(raised.value)
    assert "is stuck: nothing read for 2 s while records wait" in message
    assert "cmd.node.conformance-node.v1 partition" in message
    assert raised.value.reason == "consumer_stalled"


@pytest.mark.parametrize("client", CLIENTS)
async def test_an_idle_consumer_of_many_partitions_answers_while_it_checks_progress(
    client: str, kafka_bootstrap: str
) -> None:
    # asked one partition at a time on the consumer's own connection, log ends wait
    # behind its long-polling fetch (500 ms each): 48 partitions held the thread 24 s
    async with client_bus(client, kafka_bootstrap, stall_timeout_s=2, partitions=48) as bus:
        await bus.ensure_topics([TOPIC])
        async with bus.consumer([TopicPattern(TOPIC)], "idlers") as consumer:
            with trio.fail_after(30):
                await consumer.wait_assigned()
            core = core_of(consumer)
            checking = threading.Event()
            progress = core.client.progress

            def watched(partitions: set[TopicPartition]) -> Any:
                checking.set()
                return progress(partitions)

            core.client.progress = watched  # type: ignore[method-assign]
            for _ in range(3):  # three progress checks, each met by a call
                checking.clear()
                with trio.fail_after(10):
                    await trio.to_thread.run_sync(checking.wait)
                with trio.fail_after(5):  # answered once the check is done
                    await core.transaction_state()
            assert len(core.client.assignment()) == 48


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_paused_partition_is_not_read_until_resumed(
    client: str, kafka_bootstrap: str
) -> None:
    async with client_bus(client, kafka_bootstrap) as bus:
        await bus.ensure_topics([TOPIC])
        async with bus.consumer([TopicPattern(TOPIC)], "pausers") as consumer:
            with trio.fail_after(30):
                await consumer.wait_assigned()
            held = TopicPartition(TOPIC, 0)
            consumer.pause([held])
            # a call through the consumer thread: its next fetch comes after the pause
            await core_of(consumer).transaction_state()
            await publish_spread(bus, RECORDS)
            ends = await trio.to_thread.run_sync(_log_ends, kafka_bootstrap, bus.topic(TOPIC))
            outside = sum(end for partition, end in ends.items() if partition != held.partition)
            assert 0 < outside < RECORDS, "the keys spread over the held partition and others"
            read: list[Record] = []
            with trio.fail_after(30):
                while len(read) < outside:  # every record of the other partitions
                    read += await consumer.poll(500)
            assert all(r.topic_partition != held for r in read)
            consumer.resume([held])
            with trio.fail_after(30):
                while len(read) < RECORDS:
                    read += await consumer.poll(500)
    assert sorted(r.value or b"" for r in read) == sorted(b"v%d" % i for i in range(RECORDS))


@pytest.mark.parametrize("client", CLIENTS)
async def test_reading_again_starts_at_the_last_commit(client: str, kafka_bootstrap: str) -> None:
    async with client_bus(client, kafka_bootstrap) as bus:
        await bus.ensure_topics([TOPIC])
        await bus.publish([OutboundRecord(TOPIC, b"v%d" % i, key=b"same") for i in range(30)])
        async with bus.consumer([TopicPattern(TOPIC)], "rereaders") as consumer:
            read: list[Record] = []
            with trio.fail_after(30):
                while len(read) < 30:
                    read += await consumer.poll(500)
            tp = read[0].topic_partition
            await consumer.commit({tp: 10})
            assert isinstance(consumer, RewindableConsumer)
            await consumer.rewind()
            with trio.fail_after(30):
                again = await consumer.poll(500)
    assert [r.offset for r in again] == list(range(10, 10 + len(again)))
    assert again[0].value == b"v10"


def _log_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's log end offset of ``topic``, as the broker says."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KafkaTopicPartition

    reader = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [KafkaTopicPartition(topic, p) for p in reader.partitions_for_topic(topic)]
        return {tp.partition: end for tp, end in reader.end_offsets(partitions).items()}
    finally:
        reader.close()


class _RecordedEvents:
    """Partition events that answer ``revoking`` from ``done`` and record each event."""

    def __init__(self, done: Mapping[TopicPartition, int]) -> None:
        self.done = done
        self.asked: list[TopicPartition] = []
        self.seen: list[tuple[str, list[TopicPartition]]] = []

    def assigned(self, partitions: Sequence[TopicPartition]) -> None:
        self.seen.append(("assigned", list(partitions)))

    def revoking(self, partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        self.asked.extend(partitions)
        return {tp: self.done[tp] for tp in partitions if tp in self.done}

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        self.seen.append(("revoked", list(partitions)))


def _held_after(seen: list[tuple[str, list[TopicPartition]]], bus: NamespacedBus) -> set[Any]:
    """The partitions a member holds after ``seen`` (their real topic names)."""
    held: set[TopicPartition] = set()
    for kind, partitions in seen:
        real = {TopicPartition(bus.topic(tp.topic), tp.partition) for tp in partitions}
        held = held | real if kind == "assigned" else held - real
    return held


async def _either_changes(first: ConsumerCore, second: ConsumerCore) -> None:
    """Return once the assignment of ``first`` or ``second`` changed."""
    async with trio.open_nursery() as nursery:
        for core in (first, second):
            nursery.start_soon(_then_cancel, core.assignment_changed.wait, nursery.cancel_scope)


async def _then_cancel(wait: Any, scope: trio.CancelScope) -> None:
    await wait()
    scope.cancel()


async def _keep_polling(consumer: object) -> None:
    assert isinstance(consumer, NamespacedConsumer)
    while True:
        await consumer.poll(500)


def _committed(
    bootstrap: str, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition as CKTopicPartition

    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = reader.committed(
            [CKTopicPartition(tp.topic, tp.partition) for tp in partitions], timeout=10
        )
    finally:
        reader.close()
    return {TopicPartition(tp.topic, tp.partition): tp.offset for tp in found}


async def test_librdkafka_knows_the_log_ends_of_partitions_added_after_its_first_ask(
    kafka_bootstrap: str,
) -> None:
    # its admin client kept a topic's metadata from its first ask for 15 minutes: 40 s
    # after partitions were added, their log ends were still "Unknown partition"
    async with client_bus("confluent", kafka_bootstrap, stall_timeout_s=60) as bus:
        await publish_spread(bus, RECORDS)
        async with bus.consumer([TopicPattern(TOPIC)], "askers") as consumer:
            with trio.fail_after(30):
                await consumer.wait_assigned()
            client = core_of(consumer).client
            four = {TopicPartition(bus.topic(TOPIC), p) for p in range(4)}
            assert await trio.to_thread.run_sync(client.progress, four)
            admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
            try:
                admin.create_partitions({bus.topic(TOPIC): NewPartitions(total_count=6)})
            finally:
                admin.close()
            six = {TopicPartition(bus.topic(TOPIC), p) for p in range(6)}
            found = await trio.to_thread.run_sync(client.progress, six)
    assert found is not None
    assert set(found) == six
