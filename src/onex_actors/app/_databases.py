"""Postgres connections for the db nodes a host runs: configured, DATABASE_URL, or embedded."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from importlib import resources
from pathlib import Path

import trio

from onex_actors.bridges.postgres import ANSWERS_SCHEMA, PoolSpec, PostgresPool, open_pools
from onex_actors.core import ConfigError, RoutingTable
from onex_actors.devinfra import EmbeddedPostgres

from ._config import HostConfig
from ._redaction import register_dsn

__all__ = ["demo_seed_sql", "open_databases"]

logger = logging.getLogger("onex_actors.host")


def demo_seed_sql() -> str:
    """Return the idempotent script creating and filling the demo ``users`` table."""
    return resources.files("onex_actors.devinfra").joinpath("demo_seed.sql").read_text()


def needed_connections(table: RoutingTable) -> dict[str, list[str]]:
    """Map each connection name to the hosted nodes that use it.

    Db nodes, and nodes keeping their answers there (``durable_idempotency``).
    """
    needed: dict[str, list[str]] = {}
    for node_id, contract in table.effects.items():
        names = {contract.db.connection} if contract.db is not None else set()
        if (answers := contract.answers_connection) is not None:
            names.add(answers)
        for name in sorted(names):
            needed.setdefault(name, []).append(node_id)
    return needed


def answers_connections(table: RoutingTable) -> set[str]:
    """Return the connections keeping some hosted node's answers."""
    return {
        answers
        for contract in table.effects.values()
        if (answers := contract.answers_connection) is not None
    }


@asynccontextmanager
async def open_databases(
    table: RoutingTable, config: HostConfig, *, environ: Mapping[str, str] | None = None
) -> AsyncIterator[dict[str, PostgresPool]]:
    """Open a pool per connection the hosted db nodes use.

    A connection's DSN comes from ``databases.<name>.dsn``; for ``default`` also from
    ``DATABASE_URL``; otherwise an embedded PostgreSQL is started on 127.0.0.1 with its
    data under ``databases.<name>.embedded_dir`` and the demo schema is seeded.
    """
    needed = needed_connections(table)
    if not needed:
        yield {}
        return
    env = os.environ if environ is None else environ
    async with AsyncExitStack() as stack:
        dsns: dict[str, str] = {}
        embedded: list[str] = []
        for name, nodes in needed.items():
            settings = config.databases.get(name)
            if settings is None:
                known = ", ".join(sorted(config.databases)) or "none"
                node = table.effects[nodes[0]]
                key = "db.connection" if node.db is not None else "durable_idempotency.connection"
                raise ConfigError(
                    f"node {nodes[0]!r} uses {key} {name!r}, which is not in the config's "
                    f"databases (known: {known}): add databases.{name} to the config"
                )
            dsn = settings.dsn.get_secret_value() if settings.dsn else None
            if dsn is None and name == "default":
                dsn = env.get("DATABASE_URL") or None
            register_dsn(dsn)
            if dsn is None:
                server = EmbeddedPostgres(Path(settings.embedded_dir) / name)
                dsn = await trio.to_thread.run_sync(server.start)
                stack.push_async_callback(trio.to_thread.run_sync, server.stop)
                embedded.append(name)
                logger.info(
                    "%s embedded PostgreSQL for %r on 127.0.0.1:%d",
                    "sharing another host's" if server.shared else "started",
                    name,
                    server.port,
                )
            dsns[name] = dsn
        specs = {
            name: PoolSpec(
                dsn,
                min_size=config.databases[name].min_size,
                max_size=config.databases[name].max_size,
                command_timeout=config.databases[name].statement_timeout_s,
            )
            for name, dsn in dsns.items()
        }
        pools = await stack.enter_async_context(open_pools(specs))
        for name in embedded:
            await pools[name].execute_script(demo_seed_sql())
        for name in answers_connections(table):
            await pools[name].execute_script(ANSWERS_SCHEMA)
        yield pools
