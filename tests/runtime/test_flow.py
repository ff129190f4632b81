"""The command → result flow on the in-process bus (SPEC §6, "Flow")."""

from __future__ import annotations

from pathlib import Path

import trio
from tests.contracts import RUNTIME_ID, effect, registry
from tests.handlers import ScriptedHandler

from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import (
    EffectContract,
    EnvelopeStatus,
    EnvelopeType,
    cmd_topic,
    dlq_topic,
    encode_envelope,
    evt_topic,
    new_command,
)
from onex_actors.registry import FileRegistry
from onex_actors.runtime import Bus
from onex_actors.testing import open_test_host


async def test_echo_yields_exactly_one_result_event(bus: Bus) -> None:
    async with open_test_host(
        bus=bus, runtime_id=RUNTIME_ID, contracts=registry(effect("echo-node"))
    ) as host:
        command = await host.send("echo-node", {"hello": "world"})
        result = await host.result(command)
        await host.send("echo-node", {"second": True})  # a later flow, to let the first settle
        await host.collector.wait_until(
            lambda: len(host.collector.by_topic[evt_topic("echo-node")]) == 2
        )
    assert result.type is EnvelopeType.EVT
    assert result.status is EnvelopeStatus.OK
    assert result.correlation_id == command.correlation_id
    assert result.causation_id == command.envelope_id
    assert result.payload == {"hello": "world"}
    assert result.node_id == "echo-node"
    assert result.contract_id == "echo-node@0.1.0"
    assert host.results_of(command) == [result]
    assert host.dead_letters("echo-node") == []


async def test_shipped_echo_node_contract_echoes(repo_contracts: Path) -> None:
    shipped = FileRegistry(repo_contracts).node_contracts()["echo-node"]
    assert isinstance(shipped, EffectContract)
    async with open_test_host(RUNTIME_ID, contracts=registry(shipped)) as host:
        result = await host.request("echo-node", {"hello": "world"})
    assert result.payload == {"hello": "world"}


async def test_uppercase_transformation(bus: Bus) -> None:
    contracts = registry(effect("shout", local={"operation": "uppercase"}))
    async with open_test_host(bus=bus, runtime_id=RUNTIME_ID, contracts=contracts) as host:
        result = await host.request("shout", {"a": "quiet", "n": [1, "x"], "o": {"k": "v"}})
    assert result.payload == {"a": "QUIET", "n": [1, "X"], "o": {"k": "V"}}


async def test_results_keep_per_key_order_by_default(bus: Bus) -> None:
    async with open_test_host(
        bus=bus, runtime_id=RUNTIME_ID, contracts=registry(effect("echo-node"))
    ) as host:
        commands = [
            await host.send("echo-node", {"i": i}, headers={"partition_key": "user-1"})
            for i in range(50)
        ]
        await host.collector.wait_until(
            lambda: len(host.collector.by_topic[evt_topic("echo-node")]) == 50
        )
        order = [e.payload["i"] for e in host.collector.by_topic[evt_topic("echo-node")]]
    assert order == list(range(50))
    assert len(commands) == 50


async def test_graceful_exit_commits_everything_answered() -> None:
    contracts = registry(effect("echo-node"))
    async with open_test_host(RUNTIME_ID, contracts=contracts) as host:
        for i in range(20):
            await host.send("echo-node", {"i": i})
        await host.collector.wait_until(
            lambda: len(host.collector.by_topic[evt_topic("echo-node")]) == 20
        )
    bus = host.bus
    assert isinstance(bus, InProcessBus)
    committed = bus.committed(RUNTIME_ID)
    produced = bus.records(cmd_topic("echo-node"))
    by_partition: dict[int, int] = {}
    for record in produced:
        by_partition[record.partition] = record.offset + 1
    commits = {tp.partition: o for tp, o in committed.items() if tp.topic == cmd_topic("echo-node")}
    # every partition committed past its last record; one the random keys left empty
    # (1 run in about 75) has nothing to commit
    assert {p: commits.get(p, 0) for p in range(4)} == {p: by_partition.get(p, 0) for p in range(4)}


async def test_restarted_host_handles_nothing_already_answered() -> None:
    bus = InProcessBus()
    contracts = registry(effect("echo-node"))
    async with open_test_host(RUNTIME_ID, contracts=contracts, bus=bus) as host:
        for i in range(10):
            await host.send("echo-node", {"i": i})
        await host.collector.wait_until(
            lambda: len(host.collector.by_topic[evt_topic("echo-node")]) == 10
        )
    async with open_test_host(RUNTIME_ID, contracts=contracts, bus=bus) as again:
        late = await again.request("echo-node", {"late": True})
        evts = again.collector.by_topic[evt_topic("echo-node")]
        await trio.testing.wait_all_tasks_blocked()
        assert len(evts) == 11  # the collector rereads all; only one new evt was produced
    assert late.payload == {"late": True}


async def test_discovery_lists_hosted_nodes(bus: Bus) -> None:
    contracts = registry(effect("echo-node"), effect("shout", local={"operation": "uppercase"}))
    async with open_test_host(bus=bus, runtime_id=RUNTIME_ID, contracts=contracts) as host:
        command = new_command(RUNTIME_ID, {"op": "discover"})
        await host.host.outbox.emit(command, cmd_topic(RUNTIME_ID))
        answer = await host.result(command)
        health_cmd = new_command(RUNTIME_ID, {"op": "health"})
        await host.host.outbox.emit(health_cmd, cmd_topic(RUNTIME_ID))
        health = await host.result(health_cmd)
    assert answer.node_id == RUNTIME_ID
    nodes = answer.payload["nodes"]
    assert isinstance(nodes, list)
    assert [n["node_id"] for n in nodes] == ["echo-node", "shout"]  # type: ignore[index,call-overload]
    assert nodes[0]["evt_topic"] == evt_topic("echo-node")  # type: ignore[index,call-overload]
    assert health.payload["healthy"] is True


async def test_unknown_runtime_op_is_an_error_and_a_dead_letter(bus: Bus) -> None:
    async with open_test_host(
        bus=bus, runtime_id=RUNTIME_ID, contracts=registry(effect("echo-node"))
    ) as host:
        command = new_command(RUNTIME_ID, {"op": "reboot"})
        await host.host.outbox.emit(command, cmd_topic(RUNTIME_ID))
        answer = await host.result(command)
        await host.collector.wait_until(lambda: host.dead_letters(RUNTIME_ID))
    assert answer.status is EnvelopeStatus.ERROR
    assert answer.error is not None
    assert "knows ops 'discover' and 'health', not 'reboot'" in answer.error.message
    assert host.collector.by_topic[dlq_topic(RUNTIME_ID)][0].causation_id == command.envelope_id


async def test_replayed_command_is_answered_but_not_handled_twice(bus: Bus) -> None:
    handler = ScriptedHandler()
    contracts = registry(effect("once"))
    async with open_test_host(
        bus=bus, runtime_id=RUNTIME_ID, contracts=contracts, handlers={"once": handler}
    ) as host:
        command = await host.send("once", {"x": 1})
        first = await host.result(command)
        await host.send_raw(cmd_topic("once"), encode_envelope(command))
        await host.collector.wait_until(lambda: len(host.results_of(command)) == 2)
        node = host.health().nodes["once"]
    assert len(handler.calls) == 1
    assert host.results_of(command) == [first, first]
    assert node.duplicates_skipped == 1
