"""A consumer thread hung inside kafka-python's poll stops the host loudly (no broker)."""

from __future__ import annotations

import threading
import time

import pytest
import trio
import trio.testing
from kafka import TopicPartition as KafkaTopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError

from onex_actors.bridges._consumer_core import STUCK_POLL_S
from onex_actors.bridges.kafka._consumer import KafkaConsumerBridge, KafkaPythonClient
from onex_actors.core import BusError, TopicPattern


def bridge() -> KafkaConsumerBridge:
    pattern = TopicPattern("onex.app.local.global.cmd.node.echo-node.v1")
    return KafkaConsumerBridge({"bootstrap_servers": "127.0.0.1:1"}, [pattern], "group-x")


async def test_a_poll_hung_past_the_limit_raises(autojump_clock: trio.abc.Clock) -> None:
    consumer = bridge()
    consumer.polling_since = time.monotonic() - STUCK_POLL_S - 1
    with pytest.raises(BusError, match=r"group 'group-x' has been inside one KafkaConsumer\.poll"):
        await consumer.poll(10)


async def test_a_hung_poll_names_where_its_thread_is_stuck(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = bridge()
    release = threading.Event()

    def wedged_inside_the_client() -> None:
        release.wait()

    consumer._thread = threading.Thread(target=wedged_inside_the_client, daemon=True)
    consumer._thread.start()
    consumer.polling_since = time.monotonic() - STUCK_POLL_S - 1
    try:
        with pytest.raises(BusError, match=r"its thread at .*in wait") as raised:
            await consumer.poll(10)
    finally:
        release.set()
    assert "whole stack in the log" in str(raised.value)
    assert "in wedged_inside_the_client" in caplog.text


async def test_a_poll_in_progress_but_young_keeps_waiting(
    autojump_clock: trio.abc.Clock,
) -> None:
    consumer = bridge()
    consumer.polling_since = time.monotonic()
    with trio.move_on_after(3600) as waited:
        await consumer.poll(10)
    assert waited.cancelled_caught  # an hour of (mock) waiting, no error: nothing is stuck


class _FetchedThenBrokerAway:
    """A consumer stub: one poll returns a record; then the broker cannot say its ends."""

    def __init__(self) -> None:
        self.tp = KafkaTopicPartition("onex.app.local.global.cmd.node.echo-node.v1", 0)

    def assignment(self) -> set[KafkaTopicPartition]:
        return {self.tp}

    def paused(self) -> set[KafkaTopicPartition]:
        return set()

    def pause(self, *partitions: KafkaTopicPartition) -> None:
        pass

    def resume(self, *partitions: KafkaTopicPartition) -> None:
        pass

    def poll(self, **kwargs: object) -> dict[KafkaTopicPartition, list[ConsumerRecord]]:
        record = ConsumerRecord(self.tp.topic, 0, -1, 7, 0, 0, b"k", b"v", [], None, 1, 1, -1)
        return {self.tp: [record]}

    def highwater(self, tp: KafkaTopicPartition) -> int:
        return 8  # as the fetch response said

    def end_offsets(self, partitions: object, timeout_ms: int) -> dict[KafkaTopicPartition, int]:
        raise KafkaTimeoutError("broker away")


def test_records_fetched_are_handed_over_even_when_the_progress_check_fails() -> None:
    """A failing end-offsets call must not drop the batch its poll just fetched."""
    consumer = bridge()
    delivered: list[object] = []
    consumer._soon = lambda fn, *args: delivered.extend(args)  # type: ignore[method-assign]
    assert isinstance(consumer.client, KafkaPythonClient)
    consumer.client._consumer = _FetchedThenBrokerAway()  # type: ignore[assignment]
    consumer._fetch_once()
    ((epoch, batch),) = delivered  # handed over with the rewind epoch it was fetched in
    assert epoch == 0
    assert [(r.offset, r.value) for r in batch] == [(7, b"v")]  # type: ignore[attr-defined]
