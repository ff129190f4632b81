"""Start-up errors of the model families: an endpoint or a store the config lacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.contracts import RUNTIME_ID, effect, runtime

from onex_actors.app import HostConfig
from onex_actors.core import ConfigError
from onex_actors.registry import StaticRegistry
from onex_actors.testing import open_test_host


def leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


async def start_failure(node: object, config: HostConfig) -> str:
    contracts = StaticRegistry(
        [runtime(node.node_id, families=("llm", "embedding", "vector"))],  # type: ignore[attr-defined]
        [node],  # type: ignore[list-item]
    )
    with pytest.raises(BaseException) as info:  # noqa: PT011 - the leaf is checked below
        async with open_test_host(RUNTIME_ID, contracts=contracts, config=config):
            pass
    (error,) = leaves(info.value)
    assert isinstance(error, ConfigError)
    return str(error)


async def test_an_llm_node_naming_an_unconfigured_endpoint_stops_the_start() -> None:
    node = effect(
        "summ",
        effect_type="llm",
        llm={"endpoint": "remote", "model": "m", "messages": {"user": "hi"}},
    )
    message = await start_failure(node, HostConfig())
    assert "node 'summ' uses llm.endpoint 'remote'" in message
    assert "(configured: default)" in message
    assert "llm.endpoints.remote.base_url" in message


async def test_a_vector_node_naming_an_unconfigured_store_stops_the_start(tmp_path: Path) -> None:
    node = effect(
        "find",
        effect_type="vector",
        vector={"store": "remote", "collection": "c", "size": 3, "operation": "search"},
    )
    message = await start_failure(node, HostConfig())
    assert "node 'find' uses vector.store 'remote'" in message
    assert "add vector.stores.remote" in message


async def test_a_collection_of_another_size_stops_the_start(tmp_path: Path) -> None:
    store = {"stores": {"default": {"path": str(tmp_path / "qdrant")}}}
    config = HostConfig.model_validate({"vector": store})
    three = {"collection": "c", "size": 3, "operation": "search"}
    async with open_test_host(
        RUNTIME_ID,
        contracts=StaticRegistry(
            [runtime("find", families=("vector",))],
            [effect("find", effect_type="vector", vector=three)],
        ),
        config=config,
    ):
        pass  # creates the collection with size 3
    node = effect("find", effect_type="vector", vector={**three, "size": 4})
    message = await start_failure(node, config)
    assert "collection 'c' in vector store 'default'" in message
    assert "holds vectors of size 3, but the contract's vector.size is 4" in message
