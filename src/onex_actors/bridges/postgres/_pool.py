"""asyncpg pools driven from trio through trio-asyncio, with errors mapped to ours."""

from __future__ import annotations

import json
import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import asyncpg
import attrs
import trio_asyncio
from pydantic import JsonValue

from onex_actors.core import ConfigError, HandlerError
from onex_actors.runtime import AnswerOf

logger = logging.getLogger("onex_actors.postgres")

__all__ = ["ANSWERS_SCHEMA", "PoolSpec", "PostgresPool", "open_pools"]

# SQLSTATE classes worth retrying: connection exceptions, transaction rollback
# (serialization failure, deadlock), insufficient resources (too many connections),
# operator intervention (admin shutdown, cannot connect now).
_RETRYABLE_CLASSES = ("08", "40", "53", "57")


def map_error(exc: BaseException, name: str) -> HandlerError:
    """Translate an asyncpg or socket error into a ``HandlerError``."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        retryable = sqlstate.startswith(_RETRYABLE_CLASSES)
        return HandlerError(
            f"database {name!r}: {type(exc).__name__} (SQLSTATE {sqlstate}): {exc}",
            error_type=f"db_{type(exc).__name__}",
            retryable=retryable,
        )
    return HandlerError(
        f"database {name!r} unreachable: {type(exc).__name__}: {exc}",
        error_type="db_connection",
        retryable=True,
    )


class PostgresPool:
    """One named connection pool. Every call runs on the trio-asyncio loop."""

    def __init__(self, name: str, pool: asyncpg.Pool, *, min_size: int = 1) -> None:
        self.name = name
        self.pool = pool
        self.min_size = min_size
        self._lost_connections = False

    async def run(self, sql: str, args: Sequence[object]) -> tuple[list[asyncpg.Record], str]:
        """Run one statement; return its rows and its status (``SELECT 1``, ``INSERT 0 1``).

        After a connection-class failure, the first success refills the pool to its
        minimum size, since asyncpg only reconnects lazily.
        """
        try:
            result: tuple[list[asyncpg.Record], str] = await trio_asyncio.aio_as_trio(self._run)(
                sql, args
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            error = map_error(exc, self.name)
            self._lost_connections = self._lost_connections or error.retryable
            raise error from None
        if self._lost_connections:
            self._lost_connections = False
            await trio_asyncio.aio_as_trio(self._refill)()
        return result

    async def _refill(self) -> None:
        if self.pool.get_size() >= self.min_size:
            return
        # Holding min_size connections at once makes the pool open that many.
        held = [await self.pool.acquire() for _ in range(self.min_size)]
        for connection in held:
            await self.pool.release(connection)

    async def _run(self, sql: str, args: Sequence[object]) -> tuple[list[asyncpg.Record], str]:
        async with self.pool.acquire() as connection:
            return await self._execute(connection, sql=sql, args=args)

    @staticmethod
    async def _execute(
        connection: asyncpg.Connection, *, sql: str, args: Sequence[object]
    ) -> tuple[list[asyncpg.Record], str]:
        execute = getattr(connection, "_execute", None)
        if execute is not None:
            # What asyncpg's own Connection.execute(sql, *args) calls: rows and status
            # in one round trip through the connection's statement cache.
            # Connection.prepare() (the fallback) parses the statement every time.
            rows, status, _ = await execute(sql, args, 0, None, return_status=True)
            return list(rows), status.decode()
        statement = await connection.prepare(sql)
        prepared: list[asyncpg.Record] = await statement.fetch(*args)
        return prepared, str(statement.get_statusmsg())

    async def parameter_types(self, sql: str) -> tuple[str, ...]:
        """Return the PostgreSQL type name of each ``$n`` parameter of ``sql`` (``int4``...)."""
        try:
            names: tuple[str, ...] = await trio_asyncio.aio_as_trio(self._parameter_types)(sql)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise map_error(exc, self.name) from None
        return names

    async def _parameter_types(self, sql: str) -> tuple[str, ...]:
        async with self.pool.acquire() as connection:
            statement = await connection.prepare(sql)
            return tuple(str(t.name) for t in statement.get_parameters())

    async def execute_script(self, script: str) -> None:
        """Run several ``;``-separated statements with no parameters (schema, seeds)."""
        try:
            await trio_asyncio.aio_as_trio(self.pool.execute)(script)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise map_error(exc, self.name) from None

    async def run_once(
        self,
        node_id: str,
        envelope_id: uuid.UUID,
        sql: str,
        args: Sequence[object],
        answer_of: AnswerOf,
    ) -> tuple[Mapping[str, JsonValue], bool]:
        """Run ``sql`` and record its answer in one transaction, unless already answered.

        Returns the answer and whether it was recalled. Two hosts running the same
        command at once: the second one's record collides with the first's, its
        transaction (statement included) rolls back, and it answers with the first's.
        """
        statement = partial(self._execute, sql=sql, args=args)
        try:
            outcome: tuple[Mapping[str, JsonValue], bool] = await trio_asyncio.aio_as_trio(
                self._run_once
            )(node_id, envelope_id, statement, answer_of)
        except asyncpg.UniqueViolationError:
            recalled = await self.recall(node_id, envelope_id)
            if recalled is None:
                raise HandlerError(
                    f"database {self.name!r}: the answer of {envelope_id} collided with "
                    "another host's, which is gone now",
                    error_type="db_answer_conflict",
                    retryable=True,
                ) from None
            return recalled, True
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            error = map_error(exc, self.name)
            self._lost_connections = self._lost_connections or error.retryable
            raise error from None
        return outcome

    async def _run_once(
        self, node_id: str, envelope_id: uuid.UUID, statement: _Statement, answer_of: AnswerOf
    ) -> tuple[Mapping[str, JsonValue], bool]:
        async with self.pool.acquire() as connection, connection.transaction():
            stored = await connection.fetchval(_RECALL, node_id, envelope_id)
            if stored is not None:
                return json.loads(stored), True
            rows, status = await statement(connection)
            answer = answer_of(rows, status)
            await connection.execute(_REMEMBER, node_id, envelope_id, json.dumps(answer))
            return answer, False

    async def recall(self, node_id: str, envelope_id: uuid.UUID) -> Mapping[str, JsonValue] | None:
        """Return the recorded answer of ``envelope_id`` for ``node_id``, if any."""
        rows, _ = await self.run(_RECALL, (node_id, envelope_id))
        if not rows:
            return None
        answer: Mapping[str, JsonValue] = json.loads(rows[0][0])
        return answer

    async def remember(
        self, node_id: str, envelope_id: uuid.UUID, answer: Mapping[str, JsonValue]
    ) -> None:
        """Record ``answer``; a record already there for the envelope is kept."""
        await self.run(_REMEMBER_IF_NEW, (node_id, envelope_id, json.dumps(answer)))

    async def prune(self, node_id: str, retention_s: float, max_entries: int) -> int:
        """Drop answers of ``node_id`` past ``retention_s`` or its newest ``max_entries``."""
        _, aged = await self.run(_PRUNE_AGED, (node_id, retention_s))
        _, extra = await self.run(_PRUNE_EXTRA, (node_id, max_entries))
        return _deleted(aged) + _deleted(extra)

    def size(self) -> int:
        """Return how many connections the pool holds now."""
        return int(self.pool.get_size())

    async def ping(self) -> None:
        """Run ``select 1``; raise ``HandlerError`` if the database does not answer."""
        await self.run("select 1", ())


@attrs.frozen
class PoolSpec:
    """Where one named pool connects, and its limits."""

    dsn: str = attrs.field(repr=False)
    min_size: int = 1
    max_size: int = 10
    command_timeout: float = 30.0


@asynccontextmanager
async def open_pools(specs: Mapping[str, PoolSpec]) -> AsyncIterator[dict[str, PostgresPool]]:
    """Open a trio-asyncio loop and one pool per named spec for the duration of the block.

    Raises ``ConfigError`` naming the connection when a database cannot be reached at
    start-up.
    """
    async with trio_asyncio.open_loop() as loop:
        loop.set_exception_handler(_connection_lost_in_background)
        pools: dict[str, PostgresPool] = {}
        try:
            for name, spec in specs.items():
                try:
                    raw: Any = await trio_asyncio.aio_as_trio(asyncpg.create_pool)(
                        spec.dsn,
                        min_size=spec.min_size,
                        max_size=spec.max_size,
                        command_timeout=spec.command_timeout,
                    )
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                    raise ConfigError(_cannot_connect(name, exc)) from None
                except ValueError as exc:  # asyncpg parses a URI DSN's parts with int() etc.
                    raise ConfigError(
                        f"databases.{name}: the DSN (or DATABASE_URL) is malformed: {exc}; "
                        "expected postgresql://user:password@host:port/database"
                    ) from None
                pools[name] = PostgresPool(name, raw, min_size=spec.min_size)
            yield pools
        finally:
            for pool in pools.values():
                await trio_asyncio.aio_as_trio(pool.pool.close)()


def _connection_lost_in_background(loop: Any, context: dict[str, Any]) -> None:
    """Log what asyncpg's own background tasks raise when the server goes away.

    Releasing a connection after a cancelled query runs in a task of asyncpg's; when the
    server terminates connections meanwhile (a restart, an outage) that task fails with
    nobody awaiting it. trio-asyncio's default handler re-raises such errors into its
    loop's nursery, which ended the whole host during a PostgreSQL outage. The query
    that needed the connection has its own error (retried); this one is only logged.
    Anything else goes to the default handler.
    """
    exception = context.get("exception")
    if isinstance(exception, asyncpg.PostgresError | asyncpg.InterfaceError | OSError):
        logger.info("PostgreSQL connection lost in asyncpg's background: %s", exception)
        return
    loop.default_exception_handler(context)


def _cannot_connect(name: str, exc: BaseException) -> str:
    """Why connection ``name`` failed at start-up, and what to check."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"databases.{name}: the server's TLS certificate is not trusted "
            f"({exc.verify_message}); check that the DSN's sslrootcert names the CA that "
            "signed it, and that its host is the one the certificate is for"
        )
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return (
            f"databases.{name}: cannot connect: {type(exc).__name__}: {exc}; check the user "
            "and password in the DSN (or DATABASE_URL)"
        )
    return (
        f"databases.{name}: cannot connect: {type(exc).__name__}: {exc}; "
        "check the DSN (or DATABASE_URL) and that the server is up"
    )


_Statement = Callable[[asyncpg.Connection], Awaitable[tuple[list[asyncpg.Record], str]]]
"""One statement to run on a given connection (inside a transaction)."""

ANSWERS_SCHEMA = """
create table if not exists onex_answers (
    node_id text not null,
    envelope_id uuid not null,
    answer jsonb not null,
    answered_at timestamptz not null default now(),
    primary key (node_id, envelope_id)
);
create index if not exists onex_answers_by_age on onex_answers (node_id, answered_at);
"""
"""The durable idempotency record (``durable_idempotency``), created at start-up."""

_RECALL = "select answer::text from onex_answers where node_id = $1 and envelope_id = $2"
_REMEMBER = "insert into onex_answers (node_id, envelope_id, answer) values ($1, $2, $3::jsonb)"
_REMEMBER_IF_NEW = _REMEMBER + " on conflict do nothing"
_PRUNE_AGED = (
    "delete from onex_answers where node_id = $1 "
    "and answered_at < now() - make_interval(secs => $2)"
)
_PRUNE_EXTRA = (
    "delete from onex_answers where node_id = $1 and envelope_id in ("
    "select envelope_id from onex_answers where node_id = $1 "
    "order by answered_at desc offset $2)"
)


def _deleted(status: str) -> int:
    count = status.rsplit(" ", 1)[-1]
    return int(count) if count.isdigit() else 0
