"""The host's HTTP listener: /healthz, /readyz and /metrics over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import httpx2
import trio
from prometheus_client.parser import text_string_to_metric_families
from pydantic import JsonValue
from tests.contracts import RUNTIME_ID, effect, registry
from tests.handlers import CrashingHandler, FailingHandler, GatedHandler, ScriptedHandler

from onex_actors.app import HostConfig
from onex_actors.app._metrics import HostCollector
from onex_actors.cli._status import read_status
from onex_actors.core import PARTITION_KEY_HEADER, OnexEnvelope
from onex_actors.runtime import Bus, HandlerHealth, NodeStatus
from onex_actors.testing import HostHarness, open_test_host

LISTENING = HostConfig.model_validate({"http": {"listen": "127.0.0.1:0"}})
QUICK_RESTARTS = {"max_restarts": 1, "window_s": 60, "backoff_initial_s": 0.01}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _get(harness: HostHarness, path: str) -> httpx2.Response:
    (base,) = harness.host.listening
    async with httpx2.AsyncClient(base_url=base) as client:
        return await client.get(path)


class SickHandler(ScriptedHandler):
    """Answers, but its health check says its pool is gone."""

    async def health_check(self) -> HandlerHealth:
        return HandlerHealth(healthy=False, detail="pool closed")


async def test_metrics_move_by_exactly_the_commands_sent() -> None:
    # consume: matching, so the runtime also reads (and dead-letters) a command for ghost
    contracts = registry(effect("echo"), effect("flaky"), effect("sick"), consume="matching")
    failing = FailingHandler(failures=1000, retryable=False)
    async with open_test_host(
        RUNTIME_ID,
        contracts=contracts,
        config=LISTENING,
        handlers={"flaky": failing, "sick": SickHandler()},
    ) as host:
        assert await host.host.wait_assigned(5)
        health, ready = await _get(host, "/healthz"), await _get(host, "/readyz")
        before = _samples((await _get(host, "/metrics")).text)
        for n in range(5):
            await host.request("echo", {"n": n})
        for n in range(2):
            await host.request("flaky", {"n": n})
        unknown = await host.send("ghost", {})
        await host.collector.wait_until(lambda: host.dead_letters(RUNTIME_ID))
        after = (await _get(host, "/metrics")).text
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    assert before[("onex_envelopes_received_total", (("node", "echo"),))] == 0
    samples = _samples(after)
    assert samples[("onex_envelopes_received_total", (("node", "echo"),))] == 5
    assert samples[("onex_envelopes_answered_total", (("node", "echo"), ("status", "ok")))] == 5
    assert samples[("onex_envelopes_answered_total", (("node", "flaky"), ("status", "error")))] == 2
    assert (
        samples[("onex_envelopes_dead_lettered_total", (("node", "flaky"), ("reason", "scripted")))]
        == 2
    )
    assert (
        samples[
            (
                "onex_envelopes_dead_lettered_total",
                (("node", RUNTIME_ID), ("reason", "unknown_node")),
            )
        ]
        == 1
    ), unknown
    calls = samples[("onex_handler_duration_seconds_count", (("node", "flaky"),))]
    assert calls == 2  # one call each: not retryable
    assert (
        samples[("onex_handler_duration_seconds_bucket", (("le", "+Inf"), ("node", "flaky")))] == 2
    )
    assert samples[("onex_node_up", (("node", "echo"),))] == 1
    assert samples[("onex_consumer_assigned", ())] == 1
    assert samples[("onex_handler_up", (("node", "echo"),))] == 1
    assert samples[("onex_handler_up", (("node", "sick"),))] == 0
    assert "# HELP onex_envelopes_received_total Command envelopes queued for a node." in after


async def test_ready_turns_false_when_a_node_stops_past_its_intensity() -> None:
    contracts = registry(effect("broken", restart=QUICK_RESTARTS), effect("sibling"))
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, config=LISTENING, handlers={"broken": CrashingHandler()}
    ) as host:
        assert await host.host.wait_assigned(5)
        ready_before = await _get(host, "/readyz")
        while host.health().nodes["broken"].status is not NodeStatus.STOPPED:
            await host.request("broken", {})
        ready_after = await _get(host, "/readyz")
        live = await _get(host, "/healthz")
        metrics = _samples((await _get(host, "/metrics")).text)
    assert ready_before.status_code == 200
    assert ready_after.status_code == 503
    assert ready_after.json() == {"ready": False, "reason": "nodes stopped", "nodes": ["broken"]}
    assert live.status_code == 200  # alive all the same: the sibling still works
    assert metrics[("onex_node_up", (("node", "broken"),))] == 0
    assert metrics[("onex_node_restarts_total", (("node", "broken"),))] == 1


async def test_ready_turns_false_while_draining() -> None:
    gated = GatedHandler()
    contracts = registry(effect("slow"))
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, config=LISTENING, handlers={"slow": gated}
    ) as host:
        assert await host.host.wait_assigned(5)
        command = await host.send("slow", {})
        await gated.entered.wait()  # the node holds the command: the drain must wait for it
        host.host.shutdown()
        draining = await _get(host, "/readyz")
        alive = await _get(host, "/healthz")
        gated.gate.set()
        answered = await host.result(command)
    assert (draining.status_code, draining.json()) == (503, {"ready": False, "reason": "draining"})
    assert alive.status_code == 200
    assert answered.payload == {}


async def test_onex_status_shows_each_node_from_the_listener() -> None:
    contracts = registry(effect("echo"), effect("broken", restart=QUICK_RESTARTS))
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, config=LISTENING, handlers={"broken": CrashingHandler()}
    ) as host:
        assert await host.host.wait_assigned(5)
        for n in range(3):
            await host.request("echo", {"n": n})
        while host.health().nodes["broken"].status is not NodeStatus.STOPPED:
            await host.request("broken", {})
        (base,) = host.host.listening
        text = await trio.to_thread.run_sync(partial(read_status, base, interval=0.1))
    lines = text.splitlines()
    assert lines[0] == f"{base}: not ready: nodes stopped"
    assert lines[1].split() == [
        *("node", "state", "restarts", "received", "ok", "error", "dlq", "inbox", "in"),
        *("flight", "answered/s"),
    ]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows["echo"][:9] == ["echo", "running", "0", "3", "3", "0", "0", "0", "0"]
    assert rows["broken"][:3] == ["broken", "stopped", "1"]


class HoldingHandler(ScriptedHandler):
    """Answers at once, except commands with ``{"hold": true}``: those wait for ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.release = trio.Event()

    async def behave(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        if envelope.payload.get("hold"):
            await self.release.wait()
        return envelope.payload


async def test_consumer_lag_counts_the_records_past_the_last_commit(bus: Bus) -> None:
    holding = HoldingHandler()
    one_partition = {"headers": {PARTITION_KEY_HEADER: "same"}}
    async with open_test_host(
        RUNTIME_ID,
        contracts=registry(effect("slow")),
        config=HostConfig(commit_interval_s=0.1),
        handlers={"slow": holding},
        bus=bus,
    ) as host:
        await host.request("slow", {"hold": False}, **one_partition)
        settled = await _lag_becomes(host, [0])
        held = [await host.send("slow", {"hold": True}, **one_partition) for _ in range(4)]
        behind = await _lag_becomes(host, [4])  # read, not done: not committed
        holding.release.set()
        for command in held:
            await host.result(command)
        await _lag_becomes(host, [0])
    assert set(behind) == set(settled)  # one partition, named by topic and number


async def _lag_becomes(host: HostHarness, values: list[float]) -> dict[tuple[str, str], float]:
    """Wait, commit round by commit round, until the lag gauge shows ``values``."""
    with trio.fail_after(30):
        while sorted((lag := _lag(host)).values()) != values:
            await host.host.commits.next_round()
    return lag


def _lag(host: HostHarness) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["topic"], sample.labels["partition"]): sample.value
        for family in HostCollector(host.host).collect()
        if family.name == "onex_consumer_lag"
        for sample in family.samples
    }


async def test_readyz_and_onex_status_say_where_each_node_resumed() -> None:
    from onex_actors.app._hand_over import NodeResume

    async with open_test_host(
        RUNTIME_ID, contracts=registry(effect("echo")), config=LISTENING
    ) as host:
        assert await host.host.wait_assigned(5)
        # as a Kafka host's hand-over leaves it (the in-process bus has none)
        host.host.resumed = {"echo": NodeResume("runtime-b", {0: 5, 1: None}, "group runtime-a")}
        ready = await _get(host, "/readyz")
        (base,) = host.host.listening
        text = await trio.to_thread.run_sync(partial(read_status, base, interval=0.1))
    assert ready.json()["resumed"] == {
        "echo": {"group": "runtime-b", "source": "group runtime-a", "offsets": {"0": 5, "1": None}}
    }
    assert (
        text.splitlines()[-1] == "echo: group runtime-b, resumed at p0@5 p1@start (group runtime-a)"
    )
