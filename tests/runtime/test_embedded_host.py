"""The embedding API's manners: a start that fails, and a command no runtime can answer."""

from __future__ import annotations

import pytest
from tests.contracts import effect, runtime

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
