"""DbHandler throughput against raw asyncpg under trio-asyncio, in one run on one server.

Three ways to run the same point query N times, each with the same pool size and the same
number of concurrent callers:
  raw      asyncpg pool.fetch through trio_asyncio (the baseline)
  handler  DbHandler.execute (parameter binding from JSONPath, prepared statement, JSON-safe rows)
  runtime  the whole host on the in-process bus: N commands published at once, timed
           until their N result events are on the bus (the pool's size bounds it)
  harness  the same host, driven request by request by the test harness (send, wait
           for the result; the harness's own cost included): for reference

    python bench/db_handler.py [--queries 5000] [--concurrency 10]

The node runs on its contract's defaults (64 envelopes at once, ordered by key); the pool
holds ``--concurrency`` connections (``databases.<name>.max_size`` is 10 by default), and
the raw and handler baselines run that many callers.

Uses DATABASE_URL when set, else starts an embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio
import trio_asyncio
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_gc_flag, add_json_flag, apply_gc, print_json, record
from onex_actors.app import DatabaseSettings, HostConfig, demo_seed_sql
from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.bridges.postgres import PoolSpec, open_pools
from onex_actors.core import (
    EffectContract,
    cmd_topic,
    encode_envelope,
    evt_topic,
    new_command,
    parse_contract,
    record_key_and_headers,
)
from onex_actors.devinfra import EmbeddedPostgres
from onex_actors.handlers import DbHandler
from onex_actors.registry import FileRegistry, StaticRegistry
from onex_actors.runtime import OutboundRecord
from onex_actors.testing import open_test_host

REPO = Path(__file__).resolve().parents[1]


RUNS = 3
"""Timed rounds of each contender (``--runs``); medians are reported."""
GC_THRESHOLD: int | None = None
"""The GC threshold every contender runs under (``--gc-threshold``), the host's too."""


def command_record(user_id: int) -> OutboundRecord:
    """One ``query-user`` command as the bus carries it."""
    command = new_command("query-user", {"user_id": user_id})
    key, headers = record_key_and_headers(command)
    return OutboundRecord(cmd_topic("query-user"), encode_envelope(command), key, headers)


async def timed(label: str, total: int, concurrency: int, call: object) -> float:
    assert callable(call)
    per_worker = total // concurrency
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for worker in range(concurrency):
            nursery.start_soon(_worker, call, worker, per_worker)
    rate = per_worker * concurrency / (time.perf_counter() - start)
    print(f"{label:8} {rate:9,.0f} queries/s")
    return rate


async def _worker(call: object, worker: int, count: int) -> None:
    assert callable(call)
    for i in range(count):
        await call(1 + (worker + i) % 3)


async def main(dsn: str, queries: int, concurrency: int, keep: bool, as_json: bool = False) -> None:
    query_user = FileRegistry(REPO / "contracts").node_contracts()["query-user"]
    assert isinstance(query_user, EffectContract)
    assert query_user.db is not None
    spec = PoolSpec(dsn, min_size=concurrency, max_size=concurrency)
    async with open_pools({"default": spec}) as pools:
        pool = pools["default"]
        await pool.execute_script(demo_seed_sql())

        async def raw(user_id: int) -> object:
            return await trio_asyncio.aio_as_trio(pool.pool.fetch)(
                "select * from users where id = $1", user_id
            )

        handler = DbHandler(query_user.db, pool)

        async def via_handler(user_id: int) -> object:
            return await handler.execute(new_command("query-user", {"user_id": user_id}))

        await timed("warm-up", concurrency * 50, concurrency, raw)
        raws, handlers = [], []
        for _ in range(RUNS):
            raws.append(await timed("raw", queries, concurrency, raw))
            handlers.append(await timed("handler", queries, concurrency, via_handler))
        raw_rate, handler_rate = statistics.median(raws), statistics.median(handlers)

    runtime = parse_contract(
        {
            "kind": "runtime_host",
            "node_id": "runtime-bench",
            "version": "0.1.0",
            "subscriptions": {"cmd_topics": ["onex.app.local.global.cmd.node.#"]},
            "handlers": {"families": ["db"]},
            "host_selector": {"node_ids": ["query-user"]},
        },
        source="bench",
    )
    node = query_user  # the shipped contract: its concurrency and inbox are the defaults
    config = HostConfig(
        gc_threshold=GC_THRESHOLD,
        databases={
            "default": DatabaseSettings(
                dsn=SecretStr(dsn), min_size=concurrency, max_size=concurrency
            )
        },
    )
    bus = InProcessBus()
    async with open_test_host(
        "runtime-bench",
        contracts=StaticRegistry([runtime], [node]),
        config=config,  # type: ignore[list-item]
        bus=bus,
    ) as host:

        async def via_harness(user_id: int) -> object:
            return await host.request("query-user", {"user_id": user_id})

        async def drained(count: int) -> float:
            """Queries/s of the host draining ``count`` commands published at once."""
            records = [command_record(i % 1000 + 1) for i in range(count)]
            target = bus.record_count(evt_topic("query-user")) + count
            start = time.perf_counter()
            await bus.publish(records)
            await bus.wait_for_records(evt_topic("query-user"), target)
            rate = count / (time.perf_counter() - start)
            print(f"runtime      {rate:>7,.0f} queries/s")
            return rate

        await drained(concurrency * 50)  # warm-up
        runtime_rate = statistics.median([await drained(queries) for _ in range(RUNS)])
        harness_rate = await timed("harness", queries, concurrency, via_harness)
    handler_ratio, runtime_ratio = handler_rate / raw_rate, runtime_rate / raw_rate
    print(f"ratio handler/raw {handler_ratio:.2f}, runtime/raw {runtime_ratio:.2f}")
    if as_json:
        print_json(
            {
                "queries": queries,
                "runs": RUNS,
                "concurrency": concurrency,
                "gc_threshold": GC_THRESHOLD,
                "raw_per_s": raw_rate,
                "handler_per_s": handler_rate,
                "runtime_per_s": runtime_rate,
                "harness_request_per_s": harness_rate,
                "ratio": runtime_ratio,
                "handler_ratio": handler_ratio,
            }
        )
    if keep:
        record(
            "db_handler",
            {"raw_q_s": raw_rate, "handler_q_s": handler_rate, "runtime_q_s": runtime_rate},
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument(
        "--concurrency", type=int, default=10, help="pool size and raw callers (pool default: 10)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="store figures for the plot")
    add_json_flag(parser)
    add_gc_flag(parser)
    args = parser.parse_args()
    GC_THRESHOLD = apply_gc(args)
    RUNS = args.runs
    dsn = os.environ.get("DATABASE_URL")
    server = None
    if not dsn:
        server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="onex-bench-pg-")))
        dsn = server.start()
    try:
        trio.run(main, dsn, args.queries, args.concurrency, args.record, args.json)
    finally:
        if server is not None:
            server.remove()
