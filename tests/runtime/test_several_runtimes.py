"""Several runtimes on one bus: each reads only its own nodes' command topics.

A runtime with ``consume: hosted`` (the default) subscribes to the command topics of the
nodes it hosts and its own; a command for a node no runtime hosts waits on its topic
until a runtime hosting that node starts.
"""

from __future__ import annotations

from tests.contracts import effect, runtime

from onex_actors.core import cmd_topic
from onex_actors.registry import StaticRegistry
from onex_actors.runtime import Bus
from onex_actors.testing import HostHarness, open_test_host

LIGHT, SECOND, LATE = "runtime-light", "runtime-second", "runtime-late"


def _contracts() -> StaticRegistry:
    runtimes = [
        runtime("echo-node", "other-echo", runtime_id=LIGHT),
        runtime("second-node", runtime_id=SECOND),
        runtime("waiting-node", runtime_id=LATE),
    ]
    nodes = [effect(n) for n in ("echo-node", "other-echo", "second-node", "waiting-node")]
    return StaticRegistry(runtimes, nodes)


def _consumed_topics(harness: HostHarness) -> set[str]:
    """Every topic the host took a record from (and so committed an offset of)."""
    return {tp.topic for tp in harness.host.commits.committed_offsets()}


async def test_two_runtimes_answer_their_own_nodes_and_a_command_for_nobody_waits(
    bus: Bus,
) -> None:
    contracts = _contracts()
    await bus.ensure_topics([cmd_topic("waiting-node")])
    async with (
        open_test_host(LIGHT, contracts=contracts, bus=bus) as light,
        open_test_host(SECOND, contracts=contracts, bus=bus) as second,
    ):
        assert await light.host.wait_assigned(30)
        assert await second.host.wait_assigned(30)
        waiting = await light.send("waiting-node", {"n": "for later"})
        light_results = [await light.request("echo-node", {"n": n}) for n in range(3)]
        light_results.append(await light.request("other-echo", {"n": 3}))
        second_results = [await second.request("second-node", {"n": n}) for n in range(3)]
    assert [r.payload["n"] for r in light_results] == [0, 1, 2, 3]
    assert [r.payload["n"] for r in second_results] == [0, 1, 2]
    # neither read the other's topics nor the waiting command's, so neither dead-lettered
    assert _consumed_topics(light) == {cmd_topic("echo-node"), cmd_topic("other-echo")}
    assert _consumed_topics(second) == {cmd_topic("second-node")}
    assert not light.host.dead_letters
    assert not second.host.dead_letters
    assert not light.dead_letters(LIGHT)
    assert not second.dead_letters(SECOND)
    # the command for a node nobody hosted waited on its topic for the runtime that does
    async with open_test_host(LATE, contracts=contracts, bus=bus) as late:
        answered = await late.result(waiting)
    assert answered.payload == {"n": "for later"}
    assert answered.causation_id == waiting.envelope_id


async def test_each_runtime_is_its_own_consumer_group(bus: Bus) -> None:
    contracts = _contracts()
    async with (
        open_test_host(LIGHT, contracts=contracts, bus=bus) as light,
        open_test_host(SECOND, contracts=contracts, bus=bus) as second,
    ):
        assert (light.host.group_id, second.host.group_id) == (LIGHT, SECOND)
        # the runtime's own command topic is read too: its ops answer on every runtime
        discovered = await second.request(SECOND, {"op": "discover"})
    nodes = discovered.payload["nodes"]
    assert isinstance(nodes, list)
    assert [n["node_id"] for n in nodes] == ["second-node"]  # type: ignore[index,call-overload]
