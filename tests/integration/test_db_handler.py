"""The db family against a real PostgreSQL (and, where the issue asks, a real Kafka)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from pydantic import SecretStr
from tests.contracts import RUNTIME_ID, effect, registry
from tests.kafka_support import DEFAULT_TIER, KAFKA_FREE, NamespacedBus

from onex_actors.app import DatabaseSettings, HostConfig, open_runtime_host
from onex_actors.core import (
    ConfigError,
    ContractError,
    EnvelopeStatus,
    HandlerError,
    OnexEnvelope,
    cmd_topic,
    encode_envelope,
)
from onex_actors.devinfra import EmbeddedPostgres
from onex_actors.registry import FileRegistry, StaticRegistry
from onex_actors.runtime import Handler, HandlerHealth
from onex_actors.testing import open_test_host

INJECTIONS = [
    "'; drop table users; --",
    "1 or 1=1",
    "$1",
    ":body",
    "Robert'); DELETE FROM users WHERE ('a'='a",
    "\\'; select pg_sleep(10); --",
]


def db(node_id: str, sql: str, params: dict[str, str], **extra: Any) -> Any:
    return effect(node_id, effect_type="db", local=None, db={"sql": sql, "params": params}, **extra)


def config(dsn: str) -> HostConfig:
    return HostConfig(databases={"default": DatabaseSettings(dsn=SecretStr(dsn))})


OUTAGE_S = 30

COUNT_USERS = db("count-users", "select count(*)::int as n from users", {})


@KAFKA_FREE
async def test_query_user_over_the_shipped_contract(
    postgres_dsn: str, repo_contracts: Path
) -> None:
    query_user = FileRegistry(repo_contracts).node_contracts()["query-user"]
    async with open_test_host(
        RUNTIME_ID,
        contracts=registry(query_user),
        config=config(postgres_dsn),  # type: ignore[arg-type]
    ) as host:
        found = await host.request("query-user", {"user_id": 1})
        missing = await host.request("query-user", {"user_id": 424242})
    assert found.status is EnvelopeStatus.OK
    rows = found.payload["rows"]
    assert isinstance(rows, list)
    assert [(r["id"], r["name"]) for r in rows] == [(1, "Ada Lovelace")]  # type: ignore[index,call-overload]
    assert found.payload["rowcount"] == 1
    assert missing.payload == {"rows": [], "rowcount": 0, "status": "SELECT 0"}


async def test_injection_strings_are_data(postgres_dsn: str, kafka_bus: NamespacedBus) -> None:
    insert = db(
        "add-note",
        "insert into notes (body, tag) values (:body, :tag) returning id",
        {"body": "$.payload.body", "tag": "$.payload.tag"},
    )
    find = db(
        "find-notes",
        "select body from notes where tag = :tag order by id",
        {"tag": "$.payload.tag"},
    )
    contracts = registry(insert, find, COUNT_USERS)
    async with open_test_host(
        RUNTIME_ID, bus=kafka_bus, contracts=contracts, config=config(postgres_dsn)
    ) as host:
        before = await host.request("count-users", {})
        for text in INJECTIONS:
            added = await host.request("add-note", {"body": text, "tag": text})
            assert added.status is EnvelopeStatus.OK, added.error
        found = [await host.request("find-notes", {"tag": text}) for text in INJECTIONS]
        after = await host.request("count-users", {})
    assert before.payload["rows"] == after.payload["rows"] == [{"n": 3}]
    for text, result in zip(INJECTIONS, found, strict=True):
        assert result.payload["rows"] == [{"body": text}]


async def test_replayed_insert_runs_once(postgres_dsn: str, kafka_bus: NamespacedBus) -> None:
    insert = db(
        "add-note",
        "insert into notes (body, tag) values (:body, :tag)",
        {"body": "$.payload.body", "tag": "$.payload.tag"},
    )
    count = db(
        "count-tag",
        "select count(*)::int as n from notes where tag = :tag",
        {"tag": "$.payload.tag"},
    )
    contracts = registry(insert, count)
    async with open_test_host(
        RUNTIME_ID, bus=kafka_bus, contracts=contracts, config=config(postgres_dsn)
    ) as host:
        command = await host.send("add-note", {"body": "once", "tag": "replay-test"})
        first = await host.result(command)
        await host.send_raw(cmd_topic("add-note"), encode_envelope(command))
        await host.collector.wait_until(lambda: len(host.results_of(command)) == 2)
        counted = await host.request("count-tag", {"tag": "replay-test"})
    assert first.payload == {"rows": [], "rowcount": 1, "status": "INSERT 0 1"}
    assert counted.payload["rows"] == [{"n": 1}]


@KAFKA_FREE
async def test_values_come_back_json_safe(postgres_dsn: str) -> None:
    read = db("read-typed", "select * from typed where id = :id", {"id": "$.payload.id"})
    async with open_test_host(
        RUNTIME_ID, contracts=registry(read), config=config(postgres_dsn)
    ) as host:
        result = await host.request("read-typed", {"id": 1})
    assert result.payload["rows"] == [
        {
            "id": 1,
            "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "n": "12.50",
            "t": "2026-01-02T03:04:05+00:00",
            "b": "AP8=",
            "i": 90.0,
            "j": '{"k": [1, 2]}',
            "a": [1, 2, 3],
        }
    ]


@KAFKA_FREE
async def test_constraint_error_is_not_retried(postgres_dsn: str) -> None:
    bad = db(
        "bad-insert",
        "insert into users (id, name, email) values (1, :n, 'x@y')",
        {"n": "$.payload.n"},
    )
    async with open_test_host(
        RUNTIME_ID, contracts=registry(bad), config=config(postgres_dsn)
    ) as host:
        result = await host.request("bad-insert", {"n": "dup"})
    assert result.error is not None
    assert result.error.type == "db_UniqueViolationError"
    assert (result.error.retryable, result.error.attempts) == (False, 1)
    assert "SQLSTATE 23505" in result.error.message


@KAFKA_FREE
async def test_unknown_connection_fails_at_start_up(postgres_dsn: str) -> None:
    node = effect(
        "q", effect_type="db", local=None, db={"connection": "reporting", "sql": "select 1"}
    )
    with pytest.raises(
        ConfigError,
        match=r"uses db\.connection 'reporting', which is not in the config's databases",
    ):
        async with open_runtime_host(RUNTIME_ID, config(postgres_dsn), registry=registry(node)):
            pass


class CountingHandler:
    """Wraps a handler; sets ``failed_enough`` after ``threshold`` handler errors."""

    def __init__(self, inner: Handler, threshold: int) -> None:
        self.inner = inner
        self.failures = 0
        self.threshold = threshold
        self.failed_enough = trio.Event()

    async def execute(self, envelope: OnexEnvelope) -> Any:
        try:
            return await self.inner.execute(envelope)
        except HandlerError:
            self.failures += 1
            if self.failures >= self.threshold:
                self.failed_enough.set()
            raise

    async def health_check(self) -> HandlerHealth:
        return await self.inner.health_check()

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.skipif(
    not DEFAULT_TIER,
    reason="the outage is the database's, 30 s of it: runs once, in the default tier",
)
async def test_outage_is_retried_not_dead_lettered(
    postgres: EmbeddedPostgres | None, postgres_dsn: str, kafka_bus: NamespacedBus
) -> None:
    if postgres is None:
        pytest.skip("needs the embedded server (DATABASE_URL points at one this test cannot stop)")
    retry = {"max_attempts": 400, "backoff_initial_s": 0.05, "backoff_max_s": 0.2}
    node = db("count-users", "select count(*)::int as n from users", {}, retry=retry)
    contracts = registry(node)
    settings = DatabaseSettings(dsn=SecretStr(postgres_dsn), min_size=3, max_size=6)
    outage_config = HostConfig(databases={"default": settings})
    async with open_test_host(
        RUNTIME_ID, bus=kafka_bus, contracts=contracts, config=outage_config
    ) as host:
        actor = host.host.runtime.actor("count-users")
        counting = CountingHandler(actor.handler, threshold=5)
        actor.handler = counting
        assert (await host.request("count-users", {})).status is EnvelopeStatus.OK
        await trio.to_thread.run_sync(postgres.stop)
        commands = [await host.send("count-users", {"i": i}) for i in range(20)]
        await counting.failed_enough.wait()
        await trio.sleep(OUTAGE_S)  # the scenario: the database stays down this long
        await trio.to_thread.run_sync(postgres.start)
        results = [await host.result(c) for c in commands]
        pool_size = counting.inner.pool.size()  # type: ignore[attr-defined]
        health = await counting.inner.health_check()
    assert all(r.status is EnvelopeStatus.OK for r in results)
    assert host.dead_letters("count-users") == []
    assert counting.failures >= 5
    assert health.healthy
    assert 3 <= pool_size <= 6  # the floor restored (a refill may race one call's connection)


@KAFKA_FREE
def test_static_registry_rejects_duplicates() -> None:
    with pytest.raises(ContractError, match="given twice"):
        StaticRegistry([], [COUNT_USERS, COUNT_USERS])


@pytest.mark.parametrize(
    ("value", "what"),
    [(1.5, "a number with a fraction"), (True, "a boolean"), (2.0, "a number with a fraction")],
)
@KAFKA_FREE
async def test_a_float_or_bool_is_not_coerced_into_an_integer_id(
    postgres_dsn: str, repo_contracts: Path, value: object, what: str
) -> None:
    query_user = FileRegistry(repo_contracts).node_contracts()["query-user"]
    async with open_test_host(
        RUNTIME_ID, contracts=registry(query_user), config=config(postgres_dsn)
    ) as host:
        result = await host.request("query-user", {"user_id": value})
        ok = await host.request("query-user", {"user_id": 1})
        health = host.health().nodes["query-user"]
    assert result.error is not None
    assert (result.error.type, result.error.retryable) == ("invalid_parameter", False)
    assert f"parameter :user_id is bound to PostgreSQL type int4 and got {value!r}" in (
        result.error.message
    )
    assert what in result.error.message
    assert ok.status is EnvelopeStatus.OK
    assert len(ok.payload["rows"]) == 1  # type: ignore[arg-type]
    assert health.restarts == 0


@KAFKA_FREE
async def test_a_driver_error_names_the_parameter_as_the_contract_does(
    postgres_dsn: str, repo_contracts: Path
) -> None:
    query_user = FileRegistry(repo_contracts).node_contracts()["query-user"]
    async with open_test_host(
        RUNTIME_ID, contracts=registry(query_user), config=config(postgres_dsn)
    ) as host:
        result = await host.request("query-user", {"user_id": "abc"})
    assert result.error is not None
    assert result.error.retryable is False
    assert ":user_id" in result.error.message
    assert "$1" not in result.error.message


@KAFKA_FREE
async def test_values_of_the_wrong_type_fail_the_command_not_the_node(postgres_dsn: str) -> None:
    node = db(
        "typed-insert",
        "select :doc::jsonb -> 'k' as k, :n::int8 as n, :t::text as t",
        {"doc": "$.payload.doc", "n": "$.payload.n", "t": "$.payload.t"},
    )
    async with open_test_host(
        RUNTIME_ID, contracts=registry(node), config=config(postgres_dsn)
    ) as host:
        good = await host.request("typed-insert", {"doc": {"k": [1, 2]}, "n": 7, "t": "x"})
        bad = [
            await host.request("typed-insert", payload)
            for payload in (
                {"doc": {}, "n": 2**70, "t": "x"},
                {"doc": {}, "n": "7", "t": "x"},
                {"doc": {}, "n": 1, "t": 5},
                {"doc": {}, "n": 1, "t": "nul\u0000byte"},
            )
        ]
        health = host.health().nodes["typed-insert"]
    assert good.payload["rows"] == [{"k": "[1, 2]", "n": 7, "t": "x"}]
    for result in bad:
        assert result.error is not None
        assert result.error.retryable is False
        assert result.error.type.startswith("db_")
    assert health.restarts == 0


@KAFKA_FREE
async def test_a_malformed_dsn_is_one_clear_error(repo_contracts: Path) -> None:
    query_user = FileRegistry(repo_contracts).node_contracts()["query-user"]
    with pytest.raises(BaseException) as info:  # noqa: PT011 - unwrapped below
        async with open_runtime_host(
            RUNTIME_ID,
            config("postgresql://app@127.0.0.1:notaport/app"),
            registry=registry(query_user),
        ):
            pass
    error = info.value
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    assert isinstance(error, ConfigError)
    assert "databases.default: the DSN (or DATABASE_URL) is malformed" in str(error)
