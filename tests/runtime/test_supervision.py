"""Crash isolation, restart intensity, poison envelopes and backpressure (SPEC §6)."""

from __future__ import annotations

from collections import Counter

import pytest
import trio
import trio.testing
from tests.contracts import RUNTIME_ID, effect, registry
from tests.handlers import CrashingHandler, GatedHandler

from onex_actors.app import HostConfig
from onex_actors.core import EnvelopeStatus, evt_topic
from onex_actors.runtime import Bus, NodeStatus
from onex_actors.testing import open_test_host

KILLS = 1000
COMMANDS = 1000


async def test_killing_a_node_1000_times_loses_nothing_and_spares_its_sibling(
    autojump_clock: trio.abc.Clock,
) -> None:
    restart = {
        "max_restarts": 10 * KILLS,
        "window_s": 60,
        "backoff_initial_s": 0.001,
        "backoff_max_s": 0.001,
    }
    contracts = registry(effect("echo-node", restart=restart), effect("sibling"))
    async with open_test_host(RUNTIME_ID, contracts=contracts) as host:
        actor = host.host.runtime.actor("echo-node")
        kills = 0

        async def killer() -> None:
            nonlocal kills
            while kills < KILLS:
                await actor.wait_running()
                await trio.sleep(0.0005)  # virtual time: let some work through between kills
                if host.kill("echo-node"):
                    kills += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(killer)
            echo_cmds = []
            sibling_cmds = []
            for i in range(COMMANDS):
                echo_cmds.append(await host.send("echo-node", {"i": i}))
                sibling_cmds.append(await host.send("sibling", {"i": i}))
                await trio.sleep(0.0002)
        for command in echo_cmds + sibling_cmds:
            await host.result(command)
        await actor.wait_running()  # the restart after the last kill
        health = host.health()

    assert kills == KILLS
    assert health.nodes["echo-node"].restarts == KILLS
    assert health.nodes["echo-node"].healthy
    assert health.nodes["sibling"].restarts == 0
    for command in echo_cmds + sibling_cmds:
        results = host.results_of(command)
        assert results, f"no result for {command.payload}"
        assert all(r.status is EnvelopeStatus.OK and r.payload == command.payload for r in results)
    duplicates = sum(len(host.results_of(c)) - 1 for c in echo_cmds)
    assert duplicates <= KILLS  # at-least-once: a kill can repeat at most the envelope it held
    assert host.dead_letters("echo-node") == []


async def test_always_crashing_node_stops_after_its_intensity(
    autojump_clock: trio.abc.Clock,
) -> None:
    restart = {
        "max_restarts": 3,
        "window_s": 60,
        "backoff_initial_s": 1,
        "backoff_max_s": 10,
        "poison_threshold": 2,
    }
    crashing = CrashingHandler()
    contracts = registry(effect("broken", restart=restart), effect("sibling"))
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, handlers={"broken": crashing}
    ) as host:
        first = await host.send("broken", {"n": 1})
        poisoned = await host.result(first)
        second = await host.send("broken", {"n": 2})
        stopped = await host.result(second)
        health = host.health()
        third = await host.request("broken", {"n": 3})
        sibling = await host.request("sibling", {"still": "here"})
        restarts = host.logs("node_restarting")

    assert poisoned.error is not None
    assert poisoned.error.type == "poison"
    assert poisoned.error.attempts == 2
    assert "RuntimeError: bug while handling" in poisoned.error.message
    assert stopped.error is not None
    assert stopped.error.type == "node_stopped"
    assert "3 restarts in 60 s" in stopped.error.message
    assert third.error is not None
    assert third.error.type == "node_stopped"
    node = health.nodes["broken"]
    assert (node.status, node.healthy, node.restarts) == (NodeStatus.STOPPED, False, 3)
    assert not health.healthy
    assert health.nodes["sibling"].healthy
    assert sibling.payload == {"still": "here"}
    assert [log.payload["delay_s"] for log in restarts] == [1, 2, 4]
    assert len(crashing.calls) == 4  # no busy loop: one call per run
    gaps = [b - a for a, b in zip(crashing.call_times, crashing.call_times[1:], strict=False)]
    assert gaps[0] == pytest.approx(1)  # backoff before the first restart
    assert gaps[2] == pytest.approx(4)
    assert len(host.logs("node_stopped")) == 1


async def test_full_inbox_pauses_its_partitions_and_drops_nothing() -> None:
    gated = GatedHandler()
    contracts = registry(effect("gated", inbox_size=2, concurrency=1))
    # One record per poll: whether a poll happens to see all ten must not decide the test.
    config = HostConfig(poll_max_records=1)
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, config=config, handlers={"gated": gated}
    ) as host:
        commands = [await host.send("gated", {"i": i}) for i in range(10)]
        await trio.testing.wait_all_tasks_blocked()
        node = host.health().nodes["gated"]
        assert len(gated.calls) == 1
        inbox = host.host.runtime.actor("gated").inbox
        assert inbox.paused
        # Paused once 2 wait; a record of a partition not yet seen is read before its
        # partition is paused too (4 partitions). The rest never left the bus.
        assert node.in_flight == 1
        assert 2 <= node.inbox_depth <= 2 + 3
        assert 1 + node.inbox_depth < len(commands)
        assert host.logs("partitions_paused")
        assert all(tp_offset == 0 for tp_offset in host.bus.committed(RUNTIME_ID).values())  # type: ignore[attr-defined]
        gated.gate.set()
        results = [await host.result(c) for c in commands]
    assert [r.payload["i"] for r in results] == list(range(10))
    assert host.logs("partitions_resumed")
    assert Counter(len(host.results_of(c)) for c in commands) == {1: 10}


async def test_concurrency_lets_a_node_handle_several_at_once() -> None:
    gated = GatedHandler()
    contracts = registry(effect("wide", concurrency=3, inbox_size=10))
    async with open_test_host(RUNTIME_ID, contracts=contracts, handlers={"wide": gated}) as host:
        commands = [await host.send("wide", {"i": i}) for i in range(6)]
        await trio.testing.wait_all_tasks_blocked()
        assert gated.active == 3
        gated.gate.set()
        for command in commands:
            await host.result(command)
    assert gated.max_active == 3


async def test_temporary_node_is_not_restarted(bus: Bus) -> None:
    contracts = registry(effect("once", restart={"policy": "temporary"}), effect("sibling"))
    async with open_test_host(bus=bus, runtime_id=RUNTIME_ID, contracts=contracts) as host:
        await host.host.runtime.actor("once").wait_running()
        assert host.kill("once")
        result = await host.request("once", {})
        node = host.health().nodes["once"]
        assert await host.request("sibling", {}) is not None
    assert result.error is not None
    assert result.error.type == "node_stopped"
    assert (node.status, node.restarts) == (NodeStatus.STOPPED, 0)


async def test_evt_topic_of_each_node_is_its_own(bus: Bus) -> None:
    contracts = registry(effect("a-node"), effect("b-node"))
    async with open_test_host(bus=bus, runtime_id=RUNTIME_ID, contracts=contracts) as host:
        await host.request("a-node", {})
        await host.request("b-node", {})
    assert len(host.collector.by_topic[evt_topic("a-node")]) == 1
    assert len(host.collector.by_topic[evt_topic("b-node")]) == 1
