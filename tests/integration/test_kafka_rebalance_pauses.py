"""A partition paused when a rebalance takes it away flows again when it comes back.

librdkafka keeps a partition's pause flag across revocation and re-assignment (the
Java client and kafka-python drop it): a bridge that forgets the partition when it
goes, and is asked to resume it meanwhile, would leave it paused for good, its
records never read. A fault run on CI lost 467 of 3,000 commands that way.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import trio
from tests.kafka_support import NamespacedBus, NamespacedConsumer

from onex_actors.core import TopicPattern
from onex_actors.runtime import OutboundRecord, Record, TopicPartition

TOPIC = "onex.app.local.global.cmd.node.pause-node.v1"
RECORDS = 40


@attrs.define
class Collector:
    """Polls a consumer for good (its rebalance callbacks run inside polls)."""

    consumer: NamespacedConsumer
    wanted: int = 0
    seen: list[Record] = attrs.field(factory=list)
    enough: trio.Event = attrs.field(factory=trio.Event)

    async def run(self) -> None:
        while True:
            self.seen.extend(await self.consumer.poll(500))
            if self.wanted and len(self.seen) >= self.wanted:
                self.enough.set()

    async def assignment(self, done: Callable[[set[TopicPartition]], bool]) -> set[TopicPartition]:
        """Wait until ``done`` holds for the member's assignment (real topic names)."""
        bridge = self.consumer.inner
        with trio.fail_after(60):
            while not done(set(bridge.assignment)):  # type: ignore[attr-defined]
                await bridge.assignment_changed.wait()  # type: ignore[attr-defined]
        return set(bridge.assignment)  # type: ignore[attr-defined]


async def test_a_partition_resumed_while_away_is_read_when_it_comes_back(
    kafka_bus: NamespacedBus,
) -> None:
    await kafka_bus.ensure_topics([TOPIC])
    patterns = [TopicPattern(TOPIC)]
    async with (
        kafka_bus.consumer(patterns, "pausers") as consumer,
        trio.open_nursery() as nursery,
    ):
        first = Collector(consumer, wanted=RECORDS)
        nursery.start_soon(first.run)
        every = await first.assignment(lambda owned: len(owned) == 4)
        ours = [TopicPartition(TOPIC, tp.partition) for tp in every]
        consumer.pause(ours)
        async with kafka_bus.consumer(patterns, "pausers") as other:
            second = Collector(other)
            nursery.start_soon(second.run)
            moved = await second.assignment(bool)
            await first.assignment(lambda owned: not owned & moved)
            consumer.resume(ours)  # the moved partitions are not the first member's now
        await first.assignment(lambda owned: owned >= moved)
        await kafka_bus.publish(
            [OutboundRecord(TOPIC, b"v%d" % i, key=b"k%d" % i) for i in range(RECORDS)]
        )
        with trio.move_on_after(30):
            await first.enough.wait()
        nursery.cancel_scope.cancel()
    read = sorted({record.partition for record in first.seen})
    assert len(first.seen) == RECORDS, (
        f"{RECORDS - len(first.seen)} records never read; partitions read {read}, "
        f"moved away and back {sorted(tp.partition for tp in moved)}"
    )
