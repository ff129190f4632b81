"""``delivery: exactly_once`` on a real broker: results and offsets in one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from tests.contracts import RUNTIME_ID, effect, registry
from tests.kafka_support import (
    TEST_BROKER,
    NamespacedBus,
    new_namespace,
    open_test_kafka_bus,
)

from onex_actors.app import HostConfig
from onex_actors.core import BusError
from onex_actors.testing import open_test_host

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(TEST_BROKER == "tansu", reason="tansu has no Kafka transactions"),
]

EXACTLY_ONCE = HostConfig.model_validate({"delivery": {"mode": "exactly_once"}})


@asynccontextmanager
async def _transactional_bus(bootstrap: str) -> AsyncIterator[NamespacedBus]:
    namespace = new_namespace()
    async with open_test_kafka_bus(bootstrap, transactional_id=f"{namespace}-host") as bus:
        yield NamespacedBus(bus, namespace)


async def test_every_command_is_answered_once_through_transactions(kafka_bootstrap: str) -> None:
    async with (
        _transactional_bus(kafka_bootstrap) as bus,
        open_test_host(
            RUNTIME_ID, contracts=registry(effect("echo-node")), bus=bus, config=EXACTLY_ONCE
        ) as host,
    ):
        results = [await host.request("echo-node", {"n": n}) for n in range(20)]
        assert host.host.commits.commits > 0
    assert [r.payload["n"] for r in results] == list(range(20))


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


async def test_a_second_producer_with_the_same_transactional_id_stops_the_first_loudly(
    kafka_bootstrap: str,
) -> None:
    namespace = new_namespace()
    same = f"{namespace}-same"

    async def run_until_fenced() -> None:
        async with (
            open_test_kafka_bus(kafka_bootstrap, transactional_id=same) as inner,
            open_test_host(
                RUNTIME_ID,
                contracts=registry(effect("echo-node")),
                bus=NamespacedBus(inner, namespace),
                config=EXACTLY_ONCE,
            ) as host,
        ):
            await host.request("echo-node", {"before": True})
            async with open_test_kafka_bus(kafka_bootstrap, transactional_id=same):  # fences it
                await host.send("echo-node", {"after": True})
                with trio.fail_after(30):
                    await trio.sleep_forever()

    with pytest.raises(BaseException) as info:  # noqa: PT011 - the leaves are checked below
        await run_until_fenced()
    (error,) = [e for e in _leaves(info.value) if not isinstance(e, trio.TooSlowError)]
    assert isinstance(error, BusError)
    assert error.reason == "producer_fenced"
    assert f"transactional id '{namespace}-same' was fenced" in str(error)
    assert "Each host needs its own delivery.transactional_id" in str(error)
