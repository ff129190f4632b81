"""The embedding API's manners: a start that fails, and a command no runtime can answer."""

from __future__ import annotations

import pytest
from tests.contracts import effect, runtime
from tests.runtime.test_keyed_store import SIGNUP_FLOW
from tests.runtime.test_pure_nodes import tree

from onex_actors.app import open_embedded_host
from onex_actors.core import ConfigError, ContractError, EnvelopeStatus
from onex_actors.registry import StaticRegistry

TREE = StaticRegistry(
    [runtime("echo-node", runtime_id="runtime-a"), runtime("other-node", runtime_id="runtime-b")],
    [effect("echo-node"), effect("other-node")],
)


async def test_a_start_that_fails_raises_its_own_error_not_a_group() -> None:
    with pytest.raises(ContractError, match="no runtime contract 'runtime-c'"):
        async with open_embedded_host("runtime-c", contracts=TREE):
            pass


async def test_what_the_block_raises_comes_out_as_trio_gives_it() -> None:
    with pytest.raises(ExceptionGroup) as raised:
        async with open_embedded_host("runtime-a", contracts=TREE):
            raise ConfigError("the caller's own")
    assert raised.group_contains(ConfigError, match="the caller's own")


async def test_a_command_for_an_id_the_tree_lacks_is_refused_at_once() -> None:
    async with open_embedded_host("runtime-a", contracts=TREE) as host:
        with pytest.raises(ConfigError) as refused:
            await host.send("echo-nod", {})
        answered = await host.request("echo-node", {"n": 1})
        sent_on = await host.send("other-node", {})  # in the tree: its runtime may start
        to_a_runtime = await host.send("runtime-b", {"op": "discover"})
    assert str(refused.value) == (
        "no node 'echo-nod' in the contract tree of runtime 'runtime-a' (its nodes and "
        "runtimes: echo-node, other-node, runtime-a, runtime-b); did you mean 'echo-node'?"
    )
    assert answered.status is EnvelopeStatus.OK
    assert (sent_on.node_id, to_a_runtime.node_id) == ("other-node", "runtime-b")


async def test_state_reads_a_reducers_keys_and_a_workflows_instances() -> None:
    async with open_embedded_host("runtime-dev-state", contracts=tree(SIGNUP_FLOW)) as host:
        assert host.state("account", "a1") is None  # never sent
        await host.request("account", {"account_id": "a1", "trigger": "deposit", "amount": 7})
        other = await host.request(
            "account", {"account_id": "a1", "trigger": "deposit", "amount": 2}, tenant_id="acme"
        )
        done = await host.request("signup-flow", {"user": "ann"})
        instance = host.state("signup-flow", str(done.correlation_id))
        with pytest.raises(ConfigError) as stateless:
            host.state("price-quote", "k")
        with pytest.raises(ConfigError) as absent:
            host.state("ghost", "k")
        assert host.state("account", "a1") == {"balance": 7, "status": "open"}
        assert host.state("account", "a1", tenant="acme") == {"balance": 2, "status": "open"}
    assert other.status is EnvelopeStatus.OK
    assert done.payload == {"greeting": "ann"}
    assert instance is not None
    assert (instance["status"], instance["steps"]["hello"]["output"]) == (
        "completed",
        {"text": "ann"},
    )
    assert str(stateless.value) == (
        "node 'price-quote' is a compute node: it keeps no state (state() reads a reducer's "
        "keys and an orchestrator's instances)"
    )
    assert str(absent.value).startswith("runtime 'runtime-dev-state' does not run node 'ghost'")
