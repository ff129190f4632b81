"""Postgres: asyncpg pools driven from trio through trio-asyncio (the ``SqlPool`` port)."""

from ._pool import ANSWERS_SCHEMA as ANSWERS_SCHEMA
from ._pool import PoolSpec as PoolSpec
from ._pool import PostgresPool as PostgresPool
from ._pool import open_pools as open_pools

__all__ = ["ANSWERS_SCHEMA", "PoolSpec", "PostgresPool", "open_pools"]
