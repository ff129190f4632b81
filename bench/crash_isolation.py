"""Crash isolation and restart latency on the in-process bus.

Measures, in one process: a sibling node's throughput while echo-node, getting a tenth
as many commands, is killed KILLS times, against the same workload with no kills (the
baseline); and the restart latency of echo-node (from the end of the killed run to the
next run, restart backoff 0). After a warm-up, RUNS rounds of both; medians.

    python bench/crash_isolation.py [--kills 1000] [--commands 20000] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import trio

from onex_actors.core import EffectContract, RuntimeHostContract, parse_contract
from onex_actors.registry import StaticRegistry
from onex_actors.testing import HostHarness, open_test_host

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_json_flag, print_json

RESTART = {"max_restarts": 1_000_000, "window_s": 60, "backoff_initial_s": 0, "backoff_max_s": 0}


def contracts() -> StaticRegistry:
    echo = parse_contract(
        {
            "kind": "effect",
            "node_id": "echo-node",
            "version": "0.1.0",
            "effect_type": "local",
            "restart": RESTART,
        },
        source="bench",
    )
    sibling = parse_contract(
        {
            "kind": "effect",
            "node_id": "sibling",
            "version": "0.1.0",
            "effect_type": "local",
        },
        source="bench",
    )
    runtime = parse_contract(
        {
            "kind": "runtime_host",
            "node_id": "runtime-bench",
            "version": "0.1.0",
            "subscriptions": {"cmd_topics": ["onex.app.local.global.cmd.node.#"]},
            "handlers": {"families": ["local"]},
            "host_selector": {"node_ids": ["echo-node", "sibling"]},
        },
        source="bench",
    )
    assert isinstance(runtime, RuntimeHostContract)
    assert isinstance(echo, EffectContract)
    assert isinstance(sibling, EffectContract)
    return StaticRegistry([runtime], [echo, sibling])


async def sibling_rate(host: HostHarness, commands: int) -> float:
    """Commands/s of the sibling: all sent, then every result awaited."""
    start = time.perf_counter()
    sent = [await host.send("sibling", {"i": i}) for i in range(commands)]
    for command in sent:
        await host.result(command)
    return commands / (time.perf_counter() - start)


async def phase(host: HostHarness, commands: int, kills: int) -> tuple[float, int, int, int]:
    """The sibling's rate while echo-node gets a tenth as many commands, killed ``kills`` times.

    Returns the rate, the kills done, and echo-node's commands lost and duplicated.
    """
    actor = host.host.runtime.actor("echo-node")
    done = 0

    async def killer() -> None:
        nonlocal done
        while done < kills:
            await actor.wait_running()
            await trio.lowlevel.checkpoint()
            if host.kill("echo-node"):
                done += 1

    async with trio.open_nursery() as nursery:
        if kills:
            nursery.start_soon(killer)
        echo_sent = [await host.send("echo-node", {"i": i}) for i in range(commands // 10)]
        rate = await sibling_rate(host, commands)
    for command in echo_sent:
        await host.result(command)
    await actor.wait_running()
    lost = sum(1 for c in echo_sent if not host.results_of(c))
    duplicates = sum(len(host.results_of(c)) - 1 for c in echo_sent)
    return rate, done, lost, duplicates


async def main(kills: int, commands: int, runs: int, as_json: bool = False) -> None:
    """Warm up, then RUNS rounds of baseline and under kills; print medians."""
    baselines: list[float] = []
    under: list[float] = []
    lost = duplicates = done = 0
    async with open_test_host("runtime-bench", contracts=contracts()) as host:
        await phase(host, commands // 4, 0)  # warm-up, not counted
        actor = host.host.runtime.actor("echo-node")
        actor.restart_latencies.clear()
        for run in range(runs):
            baselines.append((await phase(host, commands, 0))[0])
            rate, killed, missing, extra = await phase(host, commands, kills)
            under.append(rate)
            done, lost, duplicates = done + killed, lost + missing, duplicates + extra
            print(
                f"run {run + 1}: sibling baseline {baselines[-1]:,.0f} cmd/s, "
                f"during {killed} kills {rate:,.0f} cmd/s",
                flush=True,
            )
        latencies = sorted(actor.restart_latencies)
        restarts = host.health().nodes["echo-node"].restarts

    baseline, under_kills = statistics.median(baselines), statistics.median(under)
    q = statistics.quantiles(latencies, n=100)
    print(f"\nkills: {done}, restarts counted in health: {restarts}")
    print(
        f"restart latency: p50 {q[49] * 1e6:.0f} us, p99 {q[98] * 1e6:.0f} us, "
        f"max {latencies[-1] * 1e6:.0f} us (n={len(latencies)})"
    )
    print(
        f"sibling throughput, medians of {runs}: baseline {baseline:,.0f} cmd/s, "
        f"during kills {under_kills:,.0f} cmd/s, ratio {under_kills / baseline:.2f}"
    )
    print(f"echo-node commands during kills: lost {lost}, duplicates {duplicates}")
    if as_json:
        print_json(
            {
                "runs": runs,
                "kills": done,
                "restarts": restarts,
                "restart_p50_us": q[49] * 1e6,
                "restart_p99_us": q[98] * 1e6,
                "sibling_baseline_per_s": baseline,
                "sibling_under_kills_per_s": under_kills,
                "ratio": under_kills / baseline,
                "lost": lost,
                "duplicates": duplicates,
            }
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    add_json_flag(parser)
    args = parser.parse_args()
    trio.run(main, args.kills, args.commands, args.runs, args.json)
