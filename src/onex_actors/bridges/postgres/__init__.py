"""Postgres: asyncpg pools through trio-asyncio, and an embedded server for development."""

from ._embedded import EmbeddedPostgres as EmbeddedPostgres
from ._pool import PoolSpec as PoolSpec
from ._pool import PostgresPool as PostgresPool
from ._pool import open_pools as open_pools

__all__ = ["EmbeddedPostgres", "PoolSpec", "PostgresPool", "open_pools"]
