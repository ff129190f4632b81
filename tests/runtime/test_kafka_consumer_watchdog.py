"""A consumer thread hung inside kafka-python's poll stops the host loudly (no broker)."""

from __future__ import annotations

import time

import pytest
import trio
import trio.testing

from onex_actors.bridges.kafka._consumer import STUCK_POLL_S, KafkaConsumerBridge
from onex_actors.core import BusError, TopicPattern


def bridge() -> KafkaConsumerBridge:
    pattern = TopicPattern("onex.app.local.global.cmd.node.echo-node.v1")
    return KafkaConsumerBridge({"bootstrap_servers": "127.0.0.1:1"}, [pattern], "group-x")


async def test_a_poll_hung_past_the_limit_raises(autojump_clock: trio.abc.Clock) -> None:
    consumer = bridge()
    consumer.polling_since = time.monotonic() - STUCK_POLL_S - 1
    with pytest.raises(BusError, match=r"group 'group-x' has been inside one KafkaConsumer\.poll"):
        await consumer.poll(10)


async def test_a_poll_in_progress_but_young_keeps_waiting(
    autojump_clock: trio.abc.Clock,
) -> None:
    consumer = bridge()
    consumer.polling_since = time.monotonic()
    with trio.move_on_after(3600) as waited:
        await consumer.poll(10)
    assert waited.cancelled_caught  # an hour of (mock) waiting, no error: nothing is stuck
