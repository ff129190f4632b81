"""``then``: a node's ok result sends another node a command (a flow chained by topics)."""

from __future__ import annotations

import uuid

from tests.contracts import RUNTIME_ID, effect, registry, runtime

from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import EnvelopeStatus, EnvelopeType, cmd_topic, decode_envelope, hops_of
from onex_actors.registry import StaticRegistry
from onex_actors.testing import open_test_host

THEN = {"node_id": "second", "payload": {"seen": "$.result.n", "asked": "$.command.node_id"}}


async def test_an_ok_result_forwards_a_command_in_the_same_flow() -> None:
    contracts = registry(effect("first", then=THEN), effect("second"))
    bus = InProcessBus()
    async with open_test_host(RUNTIME_ID, contracts=contracts, bus=bus) as host:
        command = await host.send("first", {"n": 7})
        events = await host.collector.results(command.correlation_id, count=2)
    (sent,) = [decode_envelope(r.value) for r in bus.records(cmd_topic("second"))]  # type: ignore[arg-type]
    first, second = sorted(events, key=lambda e: e.node_id)
    assert (first.node_id, first.payload) == ("first", {"n": 7})
    assert (second.node_id, second.status) == ("second", EnvelopeStatus.OK)
    assert second.payload == {"seen": 7, "asked": "first"}
    assert second.correlation_id == command.correlation_id
    assert sent.envelope_id == uuid.uuid5(command.envelope_id, "then:second")
    assert (sent.causation_id, sent.correlation_id) == (command.envelope_id, command.correlation_id)
    assert second.causation_id == sent.envelope_id


async def test_a_then_path_that_finds_nothing_is_the_nodes_error_and_a_dead_letter() -> None:
    contracts = registry(effect("first", then=THEN), effect("second"))
    bus = InProcessBus()
    async with open_test_host(RUNTIME_ID, contracts=contracts, bus=bus) as host:
        result = await host.request("first", {"m": 1})
        await host.collector.wait_until(lambda: host.dead_letters("first"))
        (dead,) = host.dead_letters("first")
    assert result.status is EnvelopeStatus.ERROR
    assert result.error is not None
    assert result.error.type == "then_failed"
    assert "then.payload finds nothing for the command to 'second'" in result.error.message
    assert dead.error is not None
    assert dead.error.type == "then_failed"
    assert cmd_topic("second") not in {
        e.node_id for e in host.collector.by_topic[cmd_topic("second")]
    }


async def test_a_loop_across_two_runtimes_is_cut_at_its_hop_limit_and_dead_lettered() -> None:
    # each runtime's tree has no loop; together ping -> pong -> ping -> ... would run for ever
    then_pong = {"node_id": "pong", "payload": {"n": "$.result.n"}, "max_hops": 5}
    then_ping = {"node_id": "ping", "payload": {"n": "$.result.n"}, "max_hops": 5}
    left = StaticRegistry(
        [runtime("ping", runtime_id="runtime-left")],
        [effect("ping", then=then_pong), effect("pong")],
    )
    right = StaticRegistry(
        [runtime("pong", runtime_id="runtime-right")],
        [effect("pong", then=then_ping), effect("ping")],
    )
    bus = InProcessBus()
    async with (
        open_test_host("runtime-left", contracts=left, bus=bus) as ping_host,
        open_test_host("runtime-right", contracts=right, bus=bus) as pong_host,
    ):
        command = await ping_host.send("ping", {"n": 1})
        await pong_host.collector.wait_until(lambda: pong_host.dead_letters("pong"))
        await ping_host.collector.results(command.correlation_id, count=3)
    results = [
        e
        for host in (ping_host, pong_host)
        for e in host.collector.by_correlation[command.correlation_id]
        if e.type is EnvelopeType.EVT
    ]
    forwarded = [
        decode_envelope(r.value)  # type: ignore[arg-type]
        for node in ("ping", "pong")
        for r in bus.records(cmd_topic(node))
    ]
    # the command from outside carries no hop; each forward one more, up to the limit
    assert sorted(hops_of(c.headers) for c in forwarded) == [0, 1, 2, 3, 4, 5]
    assert [e.node_id for e in results if e.status is EnvelopeStatus.OK] == [
        "ping",
        "ping",
        "ping",
        "pong",
        "pong",
    ]
    (cut,) = [e for e in results if e.status is EnvelopeStatus.ERROR]
    assert cut.node_id == "pong"  # reached after 5 forwards: the sixth is not sent
    assert cut.error is not None
    assert cut.error.type == "loop"
    assert "would pass then.max_hops (5): a loop?" in cut.error.message
    (dead,) = pong_host.dead_letters("pong")
    assert dead.error is not None
    assert dead.error.type == "loop"
