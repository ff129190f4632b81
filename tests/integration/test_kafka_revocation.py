"""A rebalance takes partitions away: their done offsets are committed before they go."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
import trio
from tests.kafka_support import SESSION_TIMEOUT_MS, TEST_CLIENT, NamespacedBus, NamespacedConsumer

from onex_actors.core import TopicPattern
from onex_actors.runtime import OutboundRecord, Record, TopicPartition

pytestmark = pytest.mark.skipif(
    TEST_CLIENT != "confluent",
    reason="kafka-python runs its rebalance listener inside its own poll, where a commit "
    "would re-enter the client: only the confluent bridge commits on revocation",
)

TOPIC = "onex.app.local.global.cmd.node.revoke-node.v1"
RECORDS = 40


async def test_revoked_partitions_done_offsets_are_committed_before_they_go(
    kafka_bus: NamespacedBus, kafka_bootstrap: str
) -> None:
    from onex_actors.bridges.confluent import ConfluentConsumerBridge

    await kafka_bus.ensure_topics([TOPIC])
    await kafka_bus.publish(
        [OutboundRecord(TOPIC, b"v%d" % i, key=b"k%d" % i) for i in range(RECORDS)]
    )
    done: dict[TopicPartition, int] = {}
    """What member A finished, per partition: the offset after its last record."""
    asked: list[list[TopicPartition]] = []
    revoked = trio.Event()

    def done_offsets(partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        asked.append(list(partitions))
        revoked.set()
        return {tp: done[tp] for tp in partitions if tp in done}

    def finish(records: Sequence[Record]) -> None:
        for record in records:
            tp = record.topic_partition
            done[tp] = max(done.get(tp, 0), record.offset + 1)

    patterns = [TopicPattern(TOPIC)]
    async with (
        kafka_bus.consumer(patterns, "revokers", done_offsets=done_offsets) as first,
        trio.open_nursery() as nursery,
    ):
        assert isinstance(first, NamespacedConsumer)
        with trio.fail_after(30):
            while sum(done.values()) < RECORDS:
                finish(await first.poll(500))
        nursery.start_soon(_keep_polling, first)  # rebalance callbacks run inside consume
        async with kafka_bus.consumer(patterns, "revokers") as second:
            bridge = second.inner
            assert isinstance(bridge, ConfluentConsumerBridge)
            with trio.fail_after(60):
                await revoked.wait()
                while not bridge.assignment:
                    await bridge.assignment_changed.wait()
            moved = sorted(bridge.assignment)
            group = f"{kafka_bus.namespace}-revokers"
            committed = await trio.to_thread.run_sync(_committed, kafka_bootstrap, group, moved)
        nursery.cancel_scope.cancel()
    assert moved, "the second member got no partitions"
    assert len(moved) < len(done), "the first member kept none (not an incremental move)"
    real = {TopicPartition(kafka_bus.topic(tp.topic), tp.partition): o for tp, o in done.items()}
    asked_real = {
        TopicPartition(kafka_bus.topic(tp.topic), tp.partition) for call in asked for tp in call
    }
    assert set(moved) <= asked_real, "a partition moved without its done offsets asked for"
    assert committed == {tp: real[tp] for tp in moved}, (
        "each partition the second member took was committed at what the first had done"
    )


async def _keep_polling(consumer: NamespacedConsumer) -> None:
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
