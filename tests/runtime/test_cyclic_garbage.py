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

from onex_actors.core import EnvelopeStatus, ExpressionFailed, HandlerError, OnexEnvelope, evt_topic
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


def left_for_the_collector() -> list[object]:
    """Collect, and return the objects only the cyclic collector could free."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        left = list(gc.garbage)
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
    return left


async def answered(host: HostHarness, topic: str, count: int) -> None:
    """Wait until ``count`` error answers are on ``topic``."""
    await host.collector.wait_until(
        lambda: (
            sum(e.status is EnvelopeStatus.ERROR for e in host.collector.by_topic[topic]) >= count
        )
    )


async def cyclic_garbage_of(
    host: HostHarness, send: Callable[[int], Awaitable[object]], topic: str
) -> list[str]:
    """What of ``COMMANDS`` refused commands only the cyclic collector would free.

    Their errors and envelopes (commands and answers), by type name. Other cycles (the
    test run's own, made meanwhile by whatever else runs in the process) are not counted.
    """
    await send(-1)
    await answered(host, topic, 1)  # the node has started and answered once
    async with collector_paused():
        for i in range(COMMANDS):
            await send(i)
        await answered(host, topic, COMMANDS + 1)
        await trio.testing.wait_all_tasks_blocked()
        left = left_for_the_collector()
    answers = list(host.collector.by_topic[topic])
    ours = {a.envelope_id for a in answers} | {a.causation_id for a in answers}
    messages = [a.error.message for a in answers if a.error is not None]

    def of_these_commands(thing: object) -> bool:
        if isinstance(thing, OnexEnvelope):
            return thing.envelope_id in ours
        if isinstance(thing, HandlerError | ExpressionFailed):
            return any(str(thing) in message for message in messages)
        return False

    return [type(thing).__name__ for thing in left if of_these_commands(thing)]


async def test_a_failing_handlers_errors_leave_no_cycles() -> None:
    handler = FailingHandler(10**9, retryable=False)
    contracts = registry(effect("flaky", inbox_size=1000))
    async with open_test_host(RUNTIME_ID, contracts=contracts, handlers={"flaky": handler}) as host:
        left = await cyclic_garbage_of(
            host, lambda i: host.send("flaky", {"i": i}), evt_topic("flaky")
        )
    assert len(handler.calls) == COMMANDS + 1
    assert left == []


async def test_a_reducers_refused_keys_leave_no_cycles() -> None:
    async with open_test_host("runtime-dev-state", contracts=tree()) as host:
        left = await cyclic_garbage_of(
            host, lambda i: host.send("order-totals", {"amount": i}), evt_topic("order-totals")
        )
        refused = [e for e in host.collector.by_topic[evt_topic("order-totals")] if e.error]
    assert {e.error.type for e in refused if e.error is not None} == {"bad_key"}
    assert left == []


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
    assert left == []
