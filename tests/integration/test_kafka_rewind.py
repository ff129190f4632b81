"""Reading again from the last commit: nothing fetched before the rewind is handed on after it.

A transactional host voids what it tracks, then rewinds its consumer. A batch fetched
before the seek but taken from the consumer while the seek waits for the consumer thread
would be tracked afresh past records never answered, and a transaction could commit its
offsets: the three-hosts fault scenario lost 31 commands that way (docs/kafka.md, hole 7).
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from tests.kafka_support import NamespacedBus, NamespacedConsumer

from onex_actors.core import TopicPattern
from onex_actors.runtime import OutboundRecord, RewindableConsumer

pytestmark = pytest.mark.integration

TOPIC = "onex.app.local.global.cmd.node.rewind-node.v1"
RECORDS = 3_000


async def test_batches_fetched_before_a_rewind_are_dropped_from_the_moment_it_is_called(
    kafka_bus: NamespacedBus,
) -> None:
    await kafka_bus.ensure_topics([TOPIC])
    await kafka_bus.publish(
        [OutboundRecord(TOPIC, b"v%d" % i, key=b"same") for i in range(RECORDS)]
    )
    async with kafka_bus.consumer([TopicPattern(TOPIC)], "rewinders") as consumer:
        assert isinstance(consumer, NamespacedConsumer)
        assert isinstance(consumer.inner, RewindableConsumer)
        with trio.fail_after(30):
            first = await consumer.poll(100)
            while first[-1].offset < 200:  # the consumer thread has fetched ahead by now
                first = await consumer.poll(100)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(consumer.rewind)
                # the rewind has begun (it waits for the consumer thread's seek); batches
                # fetched ahead before it still wait in the bridge
                await trio.testing.wait_all_tasks_blocked()
                again = await consumer.poll(100)
    # nothing was committed: the rewind reads the partition from its start, and the
    # batches fetched ahead before it (offsets past 200) are never handed on
    assert again[0].offset == 0
    assert [r.offset for r in again] == list(range(len(again)))
