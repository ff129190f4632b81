"""The in-process bus's consumer: which records a poll returns, and in what order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import TopicPattern, home_partition
from onex_actors.runtime import OutboundRecord, TopicPartition

TOPIC = "onex.app.local.global.cmd.node.echo-node.v1"


def key_for(bus: InProcessBus, partition: int) -> bytes:
    """A record key the bus puts on ``partition`` (Kafka's default partitioner)."""
    return next(
        k for i in range(1000) if home_partition(k := f"k{i}".encode(), bus.partitions) == partition
    )


async def fill(bus: InProcessBus, partition: int, count: int) -> None:
    key = key_for(bus, partition)
    for i in range(count):
        await bus.publish([OutboundRecord(TOPIC, f"{partition}:{i}".encode(), key=key)])


async def test_a_busy_partition_does_not_starve_the_others() -> None:
    bus = InProcessBus(partitions=2)
    await fill(bus, 0, 100)
    await fill(bus, 1, 1)
    async with bus.consumer([TopicPattern(TOPIC)], "group") as consumer:
        first, second = await consumer.poll(10), await consumer.poll(10)
    seen = [r.partition for r in first + second]
    assert 1 in seen  # not after the ten polls partition 0 alone would take
    assert [r.offset for r in first + second if r.partition == 0] == list(range(19))


async def test_records_come_in_partition_order_and_only_once() -> None:
    bus = InProcessBus(partitions=3)
    for partition in range(3):
        await fill(bus, partition, 7)
    async with bus.consumer([TopicPattern(TOPIC)], "group") as consumer:
        records = [r for _ in range(5) for r in await consumer.poll(5)]
        await fill(bus, 2, 1)  # new data on a partition already read to its end
        records += await consumer.poll(5)
    by_partition: dict[int, list[int]] = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append(r.offset)
    assert by_partition == {0: list(range(7)), 1: list(range(7)), 2: list(range(8))}


async def test_a_paused_partition_is_skipped_until_resumed() -> None:
    bus = InProcessBus(partitions=2)
    await fill(bus, 0, 3)
    await fill(bus, 1, 3)
    async with bus.consumer([TopicPattern(TOPIC)], "group") as consumer:
        consumer.pause([TopicPartition(TOPIC, 0)])
        while_paused = await consumer.poll(10)
        consumer.resume([TopicPartition(TOPIC, 0)])
        after = await consumer.poll(10)
    assert {r.partition for r in while_paused} == {1}
    assert [(r.partition, r.offset) for r in after] == [(0, 0), (0, 1), (0, 2)]


async def test_a_rebalance_commits_what_each_member_has_done_first() -> None:
    bus = InProcessBus(partitions=2)
    await fill(bus, 0, 3)
    await fill(bus, 1, 5)
    done = {TopicPartition(TOPIC, 0): 2, TopicPartition(TOPIC, 1): 4}
    asked: list[list[TopicPartition]] = []
    events = _Events(done, asked)

    async with bus.consumer([TopicPattern(TOPIC)], "g", partitions=events) as first:
        assert len(await first.poll(100)) == 8
        assert bus.committed("g") == {}
        async with bus.consumer([TopicPattern(TOPIC)], "g") as second:
            assert asked == [sorted(done)]
            assert bus.committed("g") == done
            taken = await second.poll(100)
            assert first.assignment() == [TopicPartition(TOPIC, 0)]  # it looks again
    assert [(r.partition, r.offset) for r in taken] == [(1, 4)]
    assert events.seen == [("assigned", sorted(done)), ("revoked", [TopicPartition(TOPIC, 1)])]


async def test_only_the_groups_a_change_concerns_rebalance() -> None:
    """As in Kafka: another group's member, or a topic no member reads, revokes nothing."""
    bus = InProcessBus(partitions=2)
    await fill(bus, 0, 3)
    done = {TopicPartition(TOPIC, 0): 2, TopicPartition(TOPIC, 1): 0}
    asked: list[list[TopicPartition]] = []
    other = "onex.app.local.global.evt.node.echo-node.v1"
    async with bus.consumer([TopicPattern(TOPIC)], "g", partitions=_Events(done, asked)) as first:
        assert len(await first.poll(100)) == 3
        async with bus.consumer([TopicPattern(other)], "another-group"):
            await bus.publish([OutboundRecord(other, b"a topic g does not read")])
            assert asked == []
            assert bus.committed("g") == {}
        matching = "onex.app.local.global.cmd.node.*.v1"
        async with bus.consumer([TopicPattern(matching)], "g"):
            assert asked == [sorted(done)]  # a member joining g does
        asked.clear()
        await bus.publish([OutboundRecord(TOPIC.replace("echo-node", "new-node"), b"x")])
    assert asked == []  # "g"'s first member reads only TOPIC


class _Events:
    """Partition events that answer ``revoking`` from ``done`` and record the rest."""

    def __init__(self, done: Mapping[TopicPartition, int], asked: list[list[TopicPartition]]):
        self.done = done
        self.asked = asked
        self.seen: list[tuple[str, list[TopicPartition]]] = []

    def assigned(self, partitions: Sequence[TopicPartition]) -> None:
        self.seen.append(("assigned", sorted(partitions)))

    def revoking(self, partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        self.asked.append(sorted(partitions))
        return {tp: self.done[tp] for tp in partitions}

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        self.seen.append(("revoked", sorted(partitions)))
