"""Scale: one runtime hosting 1, 100 and 1,000 echo nodes on the in-process bus.

For each size, in a fresh process: start-up time until the host is consuming, the
process's resident memory before and after, the pure routing decision per command
(``route``), and the ping-pong latency of commands spread over all hosted nodes.

    python bench/scale.py [--sizes 1 100 1000] [--pings 2000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_json_flag, print_json, record
from onex_actors.app import HostConfig, load_routing_table, open_runtime_host
from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import (
    EffectContract,
    RuntimeHostContract,
    cmd_topic,
    encode_envelope,
    evt_topic,
    new_command,
    parse_contract,
    record_key,
    route,
)
from onex_actors.registry import StaticRegistry
from onex_actors.runtime import OutboundRecord

RUNTIME = "runtime-scale"


def rss_mib() -> float:
    """This process's resident set size, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def registry(size: int) -> StaticRegistry:
    """``size`` local echo nodes, all hosted by one runtime."""
    nodes = []
    for i in range(size):
        node = parse_contract(
            {"kind": "effect", "node_id": f"echo-{i}", "version": "0.1.0", "effect_type": "local"},
            source="bench",
        )
        assert isinstance(node, EffectContract)
        nodes.append(node)
    host = parse_contract(
        {
            "kind": "runtime_host",
            "node_id": RUNTIME,
            "version": "0.1.0",
            "subscriptions": {"cmd_topics": ["onex.app.local.global.cmd.node.#"]},
            "handlers": {"families": ["local"]},
            "host_selector": {"node_ids": [n.node_id for n in nodes]},
        },
        source="bench",
    )
    assert isinstance(host, RuntimeHostContract)
    return StaticRegistry([host], nodes)


def routing_us(contracts: StaticRegistry, size: int, calls: int = 20_000) -> float:
    """Microseconds per ``route`` decision, commands spread over every node."""
    table = load_routing_table(RUNTIME, contracts)
    commands = [new_command(f"echo-{i % size}", {}) for i in range(1000)]
    topics = [cmd_topic(c.node_id) for c in commands]
    started = time.perf_counter()
    for i in range(calls):
        route(commands[i % 1000], table, topic=topics[i % 1000])
    return (time.perf_counter() - started) / calls * 1e6


async def measure(size: int, pings: int) -> dict[str, float]:
    """Start a host with ``size`` nodes and measure it."""
    before = rss_mib()
    contracts = registry(size)
    bus = InProcessBus()
    started = time.perf_counter()
    async with open_runtime_host(RUNTIME, HostConfig(), registry=contracts, bus=bus):
        startup = time.perf_counter() - started
        rss = rss_mib()
        rng = random.Random(7)
        latencies = []
        for _ in range(pings):
            node = f"echo-{rng.randrange(size)}"
            command = new_command(node, {"ping": True})
            record = OutboundRecord(
                cmd_topic(node), encode_envelope(command), key=record_key(command)
            )
            answered = bus.record_count(evt_topic(node)) + 1
            sent = time.perf_counter()
            await bus.publish([record])
            await bus.wait_for_records(evt_topic(node), answered)
            latencies.append(time.perf_counter() - sent)
    latencies.sort()
    return {
        "nodes": size,
        "startup_s": startup,
        "rss_before_mib": before,
        "rss_mib": rss,
        "route_us": routing_us(contracts, size),
        "ping_p50_ms": latencies[len(latencies) // 2] * 1000,
        "ping_p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def main() -> None:
    """Measure each size in its own process and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--record", action="store_true", help="store figures for the plot")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    add_json_flag(parser)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(trio.run(measure, args.one, args.pings)))
        return
    rows = []
    print(f"{'nodes':>6} {'start-up':>9} {'RSS':>9} {'+RSS':>8} {'route':>8} {'p50':>8} {'p99':>8}")
    for size in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--pings", str(args.pings)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        rows.append(r)
        print(
            f"{size:>6} {r['startup_s'] * 1000:>7.0f}ms {r['rss_mib']:>6.0f}MiB "
            f"{r['rss_mib'] - r['rss_before_mib']:>5.0f}MiB {r['route_us']:>6.2f}us "
            f"{r['ping_p50_ms']:>6.3f}ms {r['ping_p99_ms']:>6.3f}ms",
            flush=True,
        )
    if args.json:
        largest, smallest = rows[-1], rows[0]
        print_json(
            {
                "rows": rows,
                "ratio": largest["ping_p50_ms"] / smallest["ping_p50_ms"],
                "ratio_means": f"ping p50 at {largest['nodes']} nodes / at {smallest['nodes']}",
            }
        )
    if args.record:
        record("scale", {"rows": rows})


if __name__ == "__main__":
    main()
