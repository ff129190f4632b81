"""Batch handlers: one call for everything waiting, same semantics per envelope."""

from __future__ import annotations

import re
from collections import Counter

import trio
import trio.testing
from tests.contracts import RUNTIME_ID, effect, registry
from tests.handlers import BatchingHandler

from onex_actors.core import EnvelopeStatus, evt_topic
from onex_actors.testing import HostHarness, open_test_host

RETRY = {"max_attempts": 3, "backoff_initial_s": 1.0, "backoff_max_s": 4.0}


async def pile_up(host: HostHarness, handler: BatchingHandler, payloads: list[dict]) -> list:
    """Send ``payloads`` while the handler holds its first batch, then let it go."""
    handler.gate = trio.Event()
    commands = [await host.send("batched", payload) for payload in payloads]
    await trio.testing.wait_all_tasks_blocked()
    handler.gate.set()
    return commands


async def test_waiting_envelopes_go_to_the_handler_in_one_call() -> None:
    handler = BatchingHandler()
    contracts = registry(effect("batched", inbox_size=100))
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, handlers={"batched": handler}
    ) as host:
        commands = await pile_up(host, handler, [{"i": i} for i in range(30)])
        results = [await host.result(c) for c in commands]
    assert [r.payload for r in results] == [{"i": i} for i in range(30)]
    assert Counter(len(host.results_of(c)) for c in commands) == {1: 30}
    assert max(len(batch) for batch in handler.batches) > 1
    assert sum(len(batch) for batch in handler.batches) == 30
    assert handler.calls == []  # never one at a time


async def test_a_failure_in_a_batch_is_retried_alone(autojump_clock: trio.abc.Clock) -> None:
    handler = BatchingHandler()
    contracts = registry(effect("batched", inbox_size=100, retry=RETRY))
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, handlers={"batched": handler}
    ) as host:
        payloads = [{"i": 0}, {"i": 1, "fail": True}, {"i": 2}]
        commands = await pile_up(host, handler, payloads)
        results = [await host.result(c) for c in commands]
    assert [r.status for r in results] == [EnvelopeStatus.OK] * 3
    # the batch call was the failed envelope's first attempt; the retry, alone, succeeds
    assert [c.payload for c in handler.calls] == [{"i": 1, "fail": True}]
    assert host.dead_letters("batched") == []


async def test_a_crashing_batch_is_replayed_one_at_a_time_to_find_the_poison(
    autojump_clock: trio.abc.Clock,
) -> None:
    handler = BatchingHandler()
    restart = {"policy": "permanent", "poison_threshold": 2, "max_restarts": 10}
    contracts = registry(effect("batched", inbox_size=100, restart=restart))
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, handlers={"batched": handler}
    ) as host:
        payloads = [{"i": 0}, {"i": 1, "crash": True}, {"i": 2}, {"i": 3}]
        commands = await pile_up(host, handler, payloads)
        results = [await host.result(c) for c in commands]
        await host.collector.wait_until(lambda: host.dead_letters("batched"))
    assert [r.status for r in results] == [
        EnvelopeStatus.OK,
        EnvelopeStatus.ERROR,
        EnvelopeStatus.OK,
        EnvelopeStatus.OK,
    ]
    assert results[1].error is not None
    assert results[1].error.type == "poison"
    assert Counter(len(host.results_of(c)) for c in commands) == {1: 4}
    (dead,) = host.dead_letters("batched")
    assert dead.causation_id == commands[1].envelope_id


async def test_a_batch_past_its_timeout_is_handled_one_at_a_time(
    autojump_clock: trio.abc.Clock,
) -> None:
    handler = BatchingHandler()
    contracts = registry(effect("batched", inbox_size=100, timeout_s=5, retry={"max_attempts": 1}))
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, handlers={"batched": handler}
    ) as host:
        payloads = [{"i": 0}, {"i": 1, "hang": True}, {"i": 2}]
        commands = await pile_up(host, handler, payloads)
        results = [await host.result(c) for c in commands]
    assert [r.status for r in results] == [
        EnvelopeStatus.OK,
        EnvelopeStatus.ERROR,
        EnvelopeStatus.OK,
    ]
    assert results[1].error is not None
    assert results[1].error.type == "timeout"
    alone = [c.payload["i"] for c in handler.calls]
    # the batch that held envelope 1 timed out; its envelopes were then called alone
    assert 1 in alone
    assert sorted(alone) == sorted(set(alone))


async def test_a_handler_returning_too_few_outcomes_crashes_and_loses_nothing(
    autojump_clock: trio.abc.Clock,
) -> None:
    handler = BatchingHandler()
    handler.short_by = 1
    contracts = registry(effect("batched", inbox_size=100, concurrency=1))
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, handlers={"batched": handler}
    ) as host:
        commands = await pile_up(host, handler, [{"i": i} for i in range(5)])
        results = [await host.result(c) for c in commands]
        node = host.health().nodes["batched"]
    assert [r.status for r in results] == [EnvelopeStatus.OK] * 5
    assert node.restarts >= 1
    assert re.search(r"returned \d+ outcomes for \d+ envelopes", node.last_error or "")


async def test_a_batch_held_at_a_kill_keeps_its_order(autojump_clock: trio.abc.Clock) -> None:
    handler = BatchingHandler()
    restart = {"max_restarts": 100, "window_s": 600, "backoff_initial_s": 1, "backoff_max_s": 1}
    # one worker, no key order: everything waiting goes in one batch
    node = effect("batched", inbox_size=1000, restart=restart, concurrency=1, ordering="none")
    contracts = registry(node)
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, handlers={"batched": handler}
    ) as host:
        actor = host.host.runtime.actor("batched")
        await actor.wait_running()
        handler.gate = trio.Event()
        assert host.kill("batched")  # while it waits out its backoff, everything piles up
        commands = [
            await host.send("batched", {"i": i}, headers={"partition_key": "k"}) for i in range(200)
        ]
        await actor.wait_running()
        await trio.testing.wait_all_tasks_blocked()
        assert len(actor.in_flight) == 200  # one batch, held at the gate
        assert host.kill("batched")  # ... and handed back
        await actor.wait_running()
        handler.gate.set()
        await host.collector.wait_until(
            lambda: len(host.collector.by_topic[evt_topic("batched")]) >= 200
        )
        order = [e.payload["i"] for e in host.collector.by_topic[evt_topic("batched")]]
    assert order == list(range(200))
    assert Counter(len(host.results_of(c)) for c in commands) == {1: 200}
