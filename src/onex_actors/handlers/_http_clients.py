"""``HttpClients``: the HTTP handlers' connection pools, several small ones instead of one.

httpcore2 (under httpx2) looks at every connection of a pool each time a request starts
or ends, so one pool's cost per request grows with its size: at 64 requests at once a
pool of 100 connections spends more time choosing connections than sending. The same
connections split over pools of about 16 each are chosen from a sixth as many
(docs/benchmarks.md, "Parallel by default"); requests take the pools in turn.
"""

from __future__ import annotations

import itertools
import math

import httpx2

__all__ = ["CONNECTIONS_PER_POOL", "HttpClients"]

CONNECTIONS_PER_POOL = 16
"""Connections each pool holds at most."""


class HttpClients:
    """``max_connections`` connections in pools of ``CONNECTIONS_PER_POOL``, used in turn."""

    def __init__(self, *, max_connections: int, timeout_s: float) -> None:
        count = max(1, math.ceil(max_connections / CONNECTIONS_PER_POOL))
        per_pool = math.ceil(max_connections / count)
        limits = httpx2.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        self.clients = [
            httpx2.AsyncClient(
                timeout=timeout_s, follow_redirects=False, limits=limits, trust_env=False
            )
            for _ in range(count)
        ]
        self._turns = itertools.cycle(self.clients)

    def next(self) -> httpx2.AsyncClient:
        """Return the pool whose turn it is."""
        return next(self._turns)

    async def aclose(self) -> None:
        """Close every pool."""
        for client in self.clients:
            await client.aclose()
