"""Refused commands leave nothing for the cyclic collector: freed as soon as answered.

The host raises the young-generation threshold high (``gc_threshold``), so garbage that
only the cyclic collector frees waits long for it; an error kept past its ``except``
with its traceback is such garbage (frame, error, traceback), holding the envelope.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio
import trio.testing
from tests.contracts import RUNTIME_ID, effect, registry
from tests.handlers import FailingHandler

from onex_actors.core import EnvelopeStatus, evt_topic
from onex_actors.testing import HostHarness, open_test_host

from .test_pure_nodes import tree

COMMANDS = 200


@asynccontextmanager
async def collector_paused() -> AsyncIterator[None]:
    """Collect what is garbage now, then keep the collector off until the block ends."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def answered(host: HostHarness, topic: str, count: int) -> None:
    """Wait until ``count`` error answers are on ``topic``."""
    await host.collector.wait_until(
        lambda: (
            sum(e.status is EnvelopeStatus.ERROR for e in host.collector.by_topic[topic]) >= count
        )
    )


async def cyclic_garbage_of(
    host: HostHarness, send: Callable[[int], Awaitable[object]], topic: str
) -> int:
    """Objects only the cyclic collector frees, left by ``COMMANDS`` refused commands."""
    await send(-1)
    await answered(host, topic, 1)  # the node has started and answered once
    async with collector_paused():
        for i in range(COMMANDS):
            await send(i)
        await answered(host, topic, COMMANDS + 1)
        await trio.testing.wait_all_tasks_blocked()
        return gc.collect()


async def test_a_failing_handlers_errors_leave_no_cycles() -> None:
    handler = FailingHandler(10**9, retryable=False)
    contracts = registry(effect("flaky", inbox_size=1000))
    async with open_test_host(RUNTIME_ID, contracts=contracts, handlers={"flaky": handler}) as host:
        left = await cyclic_garbage_of(
            host, lambda i: host.send("flaky", {"i": i}), evt_topic("flaky")
        )
    assert len(handler.calls) == COMMANDS + 1
    assert left == 0


async def test_a_reducers_refused_keys_leave_no_cycles() -> None:
    async with open_test_host("runtime-dev-state", contracts=tree()) as host:
        left = await cyclic_garbage_of(
            host, lambda i: host.send("order-totals", {"amount": i}), evt_topic("order-totals")
        )
        refused = [e for e in host.collector.by_topic[evt_topic("order-totals")] if e.error]
    assert {e.error.type for e in refused if e.error is not None} == {"bad_key"}
    assert left == 0


async def test_a_guard_that_refuses_leaves_no_cycles() -> None:
    async with open_test_host("runtime-dev-state", contracts=tree()) as host:
        left = await cyclic_garbage_of(
            host,
            lambda i: host.send(
                "account", {"account_id": f"a{i}", "trigger": "withdraw", "amount": 50}
            ),
            evt_topic("account"),
        )
        refused = [e for e in host.collector.by_topic[evt_topic("account")] if e.error]
    assert {e.error.type for e in refused if e.error is not None} == {"guard_rejected"}
    assert left == 0
