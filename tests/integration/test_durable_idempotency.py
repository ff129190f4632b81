"""``durable_idempotency``: answers kept in PostgreSQL across restarts (a real server).

Each test answers a command, restarts the host (a fresh in-memory window), replays the
very same envelope and checks on the server side that nothing ran twice: the table's
rows, the HTTP server's requests.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import trio
from pydantic import SecretStr
from tests.contracts import RUNTIME_ID, effect, registry
from tests.http_server import RecordingServer, recording_server
from tests.kafka_support import KAFKA_FREE

from onex_actors.app import DatabaseSettings, HostConfig, HttpSettings, open_runtime_host
from onex_actors.core import ConfigError, EnvelopeStatus, cmd_topic, encode_envelope, new_command
from onex_actors.testing import open_test_host

pytestmark = [pytest.mark.integration, KAFKA_FREE]

DURABLE = {"retention_s": 3600, "max_entries": 1000}


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with recording_server() as running:
        yield running


async def _fetch(dsn: str, sql: str) -> list[Any]:
    """Run ``sql`` on a connection of its own (asyncio, in a thread), return its rows."""

    async def fetch() -> list[Any]:
        connection = await asyncpg.connect(dsn)
        try:
            return list(await connection.fetch(sql))
        finally:
            await connection.close()

    return await trio.to_thread.run_sync(asyncio.run, fetch())


def _db_config(dsn: str, **more: Any) -> HostConfig:
    return HostConfig(databases={"default": DatabaseSettings(dsn=SecretStr(dsn))}, **more)


async def test_a_db_command_replayed_after_a_restart_is_answered_from_its_record(
    postgres_dsn: str,
) -> None:
    table = f"durable_rows_{uuid.uuid4().hex[:8]}"
    insert = effect(
        "add-row",
        effect_type="db",
        local=None,
        db={
            "sql": f"insert into {table} (n) values (:n) returning id, n",
            "params": {"n": "$.payload.n"},
        },
        durable_idempotency=DURABLE,
    )
    command = new_command("add-row", {"n": 7})
    await _fetch(postgres_dsn, f"create table {table} (id serial primary key, n int)")
    async with open_test_host(
        RUNTIME_ID, contracts=registry(insert), config=_db_config(postgres_dsn)
    ) as first:
        await first.send_raw(cmd_topic("add-row"), encode_envelope(command))
        answered = await first.result(command)
    async with open_test_host(
        RUNTIME_ID, contracts=registry(insert), config=_db_config(postgres_dsn)
    ) as restarted:  # an empty in-memory window: only the record can know
        await restarted.send_raw(cmd_topic("add-row"), encode_envelope(command))
        replayed = await restarted.result(command)
        recalled = restarted.host.handlers["add-row"].recalled  # type: ignore[attr-defined]
    rows = await _fetch(postgres_dsn, f"select n from {table}")
    records = await _fetch(
        postgres_dsn,
        f"select answer from onex_answers where envelope_id = '{command.envelope_id}'",
    )
    assert answered.status is EnvelopeStatus.OK
    assert replayed.payload == answered.payload  # the stored result, returned again
    assert [row["n"] for row in rows] == [7]  # the statement ran once
    assert recalled == 1
    assert len(records) == 1


async def test_an_http_command_replayed_after_a_restart_does_not_call_the_server(
    postgres_dsn: str, server: RecordingServer
) -> None:
    proxy = effect(
        "proxy",
        effect_type="http",
        local=None,
        http={"url_template": f"{server.base_url}/{{path}}", "method": "GET", "body": "none"},
        durable_idempotency=DURABLE,
    )
    config = _db_config(postgres_dsn, http=HttpSettings(allowlist=(f"127.0.0.1:{server.port}",)))
    command = new_command("proxy", {"path": "once"})
    async with open_test_host(RUNTIME_ID, contracts=registry(proxy), config=config) as first:
        await first.send_raw(cmd_topic("proxy"), encode_envelope(command))
        answered = await first.result(command)
    async with open_test_host(RUNTIME_ID, contracts=registry(proxy), config=config) as again:
        await again.send_raw(cmd_topic("proxy"), encode_envelope(command))
        replayed = await again.result(command)
    assert answered.status is EnvelopeStatus.OK
    assert replayed.payload == answered.payload
    assert [seen.path for seen in server.seen] == ["/once"]  # one request in all


async def test_a_record_kept_in_a_database_the_config_lacks_is_a_start_up_error() -> None:
    node = effect("keeper", durable_idempotency={"connection": "answers"})
    with pytest.raises(ConfigError, match=r"durable_idempotency\.connection 'answers'"):
        async with open_runtime_host(RUNTIME_ID, HostConfig(), registry=registry(node)):
            pass
