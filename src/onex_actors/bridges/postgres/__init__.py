"""Postgres: asyncpg pools through trio-asyncio, and an embedded server for development."""

from ._embedded import EmbeddedPostgres as EmbeddedPostgres
from ._pool import PostgresPool as PostgresPool
from ._pool import open_pools as open_pools

__all__ = ["EmbeddedPostgres", "PostgresPool", "open_pools"]
