"""A node's ``ordering``: parallel across keys, in order within one (the defaults).

A handler that takes a random time per envelope (trio's autojump clock, seeded) sees
every interleaving of completions the workers make; the tests check what each ordering
promises and that the node really runs envelopes in parallel.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Mapping

import pytest
import trio
import trio.testing
from pydantic import JsonValue
from tests.contracts import RUNTIME_ID, effect, registry
from tests.handlers import ScriptedHandler

from onex_actors.core import OnexEnvelope, evt_topic
from onex_actors.testing import open_test_host

KEYS = [f"k{i}" for i in range(6)]


class RandomDelays(ScriptedHandler):
    """Takes a random time per envelope; records who ran alongside whom."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.random = random.Random(seed)
        self.active: Counter[str] = Counter()
        self.overlaps: list[str] = []
        self.most_at_once = 0
        self.started: dict[str, list[int]] = defaultdict(list)

    async def behave(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        key = str(envelope.payload["key"])
        if self.active[key]:
            self.overlaps.append(key)
        self.active[key] += 1
        self.started[key].append(int(str(envelope.payload["i"])))
        self.most_at_once = max(self.most_at_once, self.active.total())
        try:
            await trio.sleep(self.random.choice([0.001, 0.01, 0.05, 0.2]))
        finally:
            self.active[key] -= 1
        return envelope.payload


async def send_keyed(host: object, count: int, seed: int) -> list[OnexEnvelope]:
    rng = random.Random(seed)
    commands = []
    for i in range(count):
        key = rng.choice(KEYS)
        commands.append(
            await host.send("keyed", {"i": i, "key": key}, headers={"partition_key": key})  # type: ignore[attr-defined]
        )
    return commands


@pytest.mark.parametrize("seed", range(5))
async def test_by_default_one_key_never_overlaps_and_keeps_its_order(
    seed: int, autojump_clock: trio.abc.Clock
) -> None:
    handler = RandomDelays(seed)
    contracts = registry(effect("keyed"))  # ordering: key, concurrency 64
    async with open_test_host(RUNTIME_ID, contracts=contracts, handlers={"keyed": handler}) as host:
        commands = await send_keyed(host, 200, seed)
        await host.collector.wait_until(
            lambda: len(host.collector.by_topic[evt_topic("keyed")]) >= len(commands)
        )
        results = list(host.collector.by_topic[evt_topic("keyed")])
    assert handler.overlaps == []
    assert handler.most_at_once > 1  # different keys did run side by side
    sent: dict[str, list[int]] = defaultdict(list)
    answered: dict[str, list[int]] = defaultdict(list)
    for command in commands:
        sent[str(command.payload["key"])].append(int(str(command.payload["i"])))
    for result in results:
        answered[str(result.payload["key"])].append(int(str(result.payload["i"])))
    assert dict(handler.started) == dict(sent)
    assert dict(answered) == dict(sent)  # each key's results in the order it was sent


async def test_partition_ordering_runs_one_envelope_per_partition(
    autojump_clock: trio.abc.Clock,
) -> None:
    handler = RandomDelays(7)
    contracts = registry(effect("keyed", ordering="partition"))
    async with open_test_host(RUNTIME_ID, contracts=contracts, handlers={"keyed": handler}) as host:
        partitions = host.bus.partitions  # type: ignore[attr-defined]
        commands = await send_keyed(host, 100, 7)
        await host.collector.wait_until(
            lambda: len(host.collector.by_topic[evt_topic("keyed")]) >= len(commands)
        )
    assert 1 < handler.most_at_once <= partitions
    assert handler.overlaps == []


async def test_no_ordering_runs_one_key_side_by_side(autojump_clock: trio.abc.Clock) -> None:
    handler = RandomDelays(3)
    contracts = registry(effect("keyed", ordering="none", concurrency=8))
    async with open_test_host(RUNTIME_ID, contracts=contracts, handlers={"keyed": handler}) as host:
        commands = await send_keyed(host, 100, 3)
        await host.collector.wait_until(
            lambda: len(host.collector.by_topic[evt_topic("keyed")]) >= len(commands)
        )
    assert handler.overlaps  # nothing holds a key back
    assert handler.most_at_once == 8  # concurrency bounds it


async def test_a_kill_hands_envelopes_back_still_holding_their_keys(
    autojump_clock: trio.abc.Clock,
) -> None:
    handler = RandomDelays(11)
    restart = {"max_restarts": 100, "window_s": 600, "backoff_initial_s": 0.01}
    contracts = registry(effect("keyed", restart=restart))
    async with open_test_host(RUNTIME_ID, contracts=contracts, handlers={"keyed": handler}) as host:
        commands = await send_keyed(host, 120, 11)
        for _ in range(5):
            await trio.sleep(0.05)
            assert host.kill("keyed")
            await host.host.runtime.actor("keyed").wait_running()
        await host.collector.wait_until(
            lambda: len(host.collector.by_topic[evt_topic("keyed")]) >= len(commands)
        )
        results = list(host.collector.by_topic[evt_topic("keyed")])
    # a kill cancels a key's envelope mid-way, so it starts again; none overlaps its key
    assert handler.overlaps == []
    answered: dict[str, list[int]] = defaultdict(list)
    for result in results:
        answered[str(result.payload["key"])].append(int(str(result.payload["i"])))
    for key, order in answered.items():
        assert order == sorted(order), f"key {key}: {order}"
    assert Counter(len(host.results_of(c)) for c in commands) == {1: len(commands)}


class HoldsTheFirst(ScriptedHandler):
    """Holds envelope 0 until ``release`` is set; answers the others at once."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = trio.Event()
        self.release = trio.Event()

    async def behave(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        if envelope.payload["i"] == 0:
            self.holding.set()
            await self.release.wait()
        return envelope.payload


async def test_a_drain_ends_when_workers_waited_on_a_held_key(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Workers parked behind a key another worker holds are woken once the inbox is done.

    The inbox is closed while one worker handles a key's first envelope and the others
    wait for its next ones; before, nothing woke them once the last was handled, and a
    SIGTERM waited out the whole shutdown timeout (``drained=False``).
    """
    handler = HoldsTheFirst()
    contracts = registry(effect("keyed"))  # ordering: key, concurrency 64
    async with open_test_host(RUNTIME_ID, contracts=contracts, handlers={"keyed": handler}) as host:
        commands = [
            await host.send("keyed", {"i": i, "key": "k0"}, headers={"partition_key": "k0"})
            for i in range(10)
        ]
        runtime = host.host.runtime
        assert runtime is not None
        inbox = runtime.actor("keyed").inbox
        await handler.holding.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert inbox.received == len(commands)  # all queued: nothing is put after the close
        drained: list[bool] = []

        async def drain() -> None:
            drained.append(await runtime.drain(30))

        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            await trio.testing.wait_all_tasks_blocked()  # closed, k0 held, nine behind it
            handler.release.set()
        assert drained == [True]
        assert trio.current_time() - started < 1
    assert Counter(len(host.results_of(c)) for c in commands) == {1: len(commands)}
