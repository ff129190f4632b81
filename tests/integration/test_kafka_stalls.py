"""A stuck consumer is found by progress, and shutdown stays bounded when one is wedged.

Both wedge the real client on a real broker, for the host's command subscription only
(the harness's own collector reads on): the fetcher returning nothing while records
wait, and the consumer thread blocked inside ``KafkaConsumer.poll``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from kafka import KafkaConsumer
from kafka.consumer.fetcher import Fetcher
from tests.contracts import RUNTIME_ID, effect, registry
from tests.kafka_support import SESSION_TIMEOUT_MS, NamespacedBus

from onex_actors.bridges.kafka import open_kafka_bus
from onex_actors.core import BusError
from onex_actors.testing import open_test_host

pytestmark = pytest.mark.integration


def _reads_commands(subscriptions: Any) -> bool:
    """Whether a consumer's subscription (by pattern, or by topic names) is to commands."""
    pattern = getattr(subscriptions, "subscribed_pattern", None)
    if pattern is not None:
        return "cmd" in pattern.pattern
    return any(".cmd." in topic for topic in getattr(subscriptions, "subscription", None) or ())


@asynccontextmanager
async def _bus(bootstrap: str, **settings: float) -> AsyncIterator[NamespacedBus]:
    async with open_kafka_bus(
        {"bootstrap_servers": bootstrap}, session_timeout_ms=SESSION_TIMEOUT_MS, **settings
    ) as bus:
        yield NamespacedBus(bus)


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


async def test_records_waiting_and_nothing_read_stops_the_host_loudly(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched_records: Callable[..., Any] = Fetcher.fetched_records

    def wedged(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _reads_commands(self._subscriptions):
            return {}, False
        return fetched_records(self, *args, **kwargs)

    monkeypatch.setattr(Fetcher, "fetched_records", wedged)

    async def run_until_stuck() -> None:
        async with (
            _bus(kafka_bootstrap, stall_timeout_s=2) as bus,
            open_test_host(RUNTIME_ID, contracts=registry(effect("echo-node")), bus=bus) as host,
        ):
            await host.send("echo-node", {"waits": True})
            with trio.fail_after(60):
                await trio.sleep_forever()

    with pytest.raises(BaseException) as info:  # noqa: PT011 - the leaves are checked below
        await run_until_stuck()
    (error,) = _leaves(info.value)
    assert isinstance(error, BusError)
    assert "is stuck: nothing read for 2 s while records wait" in str(error)
    assert "cmd.node.echo-node.v1 partition" in str(error)
    assert "records waiting from offset 0" in str(error)


async def test_shutdown_is_bounded_when_the_consumer_thread_is_wedged(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    poll: Callable[..., Any] = KafkaConsumer.poll

    def wedged(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _reads_commands(self._subscription):
            release.wait()
        return poll(self, *args, **kwargs)

    monkeypatch.setattr(KafkaConsumer, "poll", wedged)
    try:
        caplog.set_level(logging.INFO, logger="onex_actors")
        with trio.fail_after(30):
            async with (
                _bus(kafka_bootstrap, call_timeout_s=2) as bus,
                open_test_host(
                    RUNTIME_ID, contracts=registry(effect("echo-node")), bus=bus
                ) as host,
            ):
                await host.send("echo-node", {"never": "answered"})
    finally:
        release.set()
    assert "did not stop within 2 s: leaving its thread behind" in caplog.text
    assert "runtime_stopped drained=True" in caplog.text
