"""A flood of commands at a slow node over a real broker: memory and buffers stay bounded.

Produces COMMANDS ~200-byte commands (from a separate process) at a node whose handler
takes 2 ms, then samples the host for SECONDS: RSS, the node's inbox (all it holds
before its workers), batches outstanding between the consumer thread and trio, pauses
and rebalances. The bound: inbox < inbox_size + 5 polls, no rebalance, RSS flat.

    python bench/kafka_flood.py [--commands 1000000] [--seconds 60] [--bootstrap HOST:PORT]

Without --bootstrap it starts a local Apache Kafka on 127.0.0.1:29292 and stops it after.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

import trio
from pydantic import JsonValue

from onex_actors.bridges.kafka import KafkaConsumerBridge, open_kafka_bus
from onex_actors.core import OnexEnvelope, cmd_topic
from onex_actors.runtime import HandlerHealth
from onex_actors.testing import open_test_host

INBOX = 64
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from _contracts import one_node  # noqa: E402
from _kafka import broker  # noqa: E402
from _record import add_json_flag, print_json  # noqa: E402


class SlowHandler:
    """Takes 2 ms per command; counts what it handled."""

    def __init__(self) -> None:
        self.handled = 0

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        """Sleep 2 ms, then answer."""
        await trio.sleep(0.002)
        self.handled += 1
        return {"i": envelope.payload["i"]}

    async def health_check(self) -> HandlerHealth:
        """Always healthy."""
        return HandlerHealth(healthy=True)


def rss_mib() -> float:
    """This process's resident memory."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def flood(bootstrap: str, commands: int, seconds: float, as_json: bool = False) -> None:
    """Run the flood and print what was sampled."""
    tag = uuid.uuid4().hex[:8]
    node, runtime = f"flood-{tag}", f"runtime-flood-{tag}"
    handler = SlowHandler()
    async with (
        open_kafka_bus({"bootstrap_servers": bootstrap}) as bus,
        open_test_host(
            runtime,
            contracts=one_node(node, runtime, inbox_size=INBOX, concurrency=1),  # a slow node
            bus=bus,
            handlers={node: handler},
        ) as host,
    ):
        await host.request(node, {"i": -1})
        bridge = host.host._consumer
        assert isinstance(bridge, KafkaConsumerBridge)
        inbox = host.host.runtime.actor(node).inbox
        rebalances, pauses = bridge.rebalances, inbox.pauses
        rss_start = rss_mib()
        started = trio.current_time()
        produced_s: list[float] = []

        async def produce() -> None:
            done = await trio.run_process(
                [
                    sys.executable,
                    str(BENCH / "_kafka.py"),
                    bootstrap,
                    cmd_topic(node),
                    node,
                    str(commands),
                ],
                capture_stderr=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(done.stderr.decode())
            produced_s.append(trio.current_time() - started)

        peak = {"inbox": 0, "outstanding": 0, "rss": rss_start}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            while not produced_s or trio.current_time() - started < seconds:
                await trio.sleep(0.25)
                peak["inbox"] = max(peak["inbox"], host.health().nodes[node].inbox_depth)
                peak["outstanding"] = max(peak["outstanding"], bridge._outstanding)
                peak["rss"] = max(peak["rss"], rss_mib())
        elapsed = trio.current_time() - started
        print(f"commands produced     {commands:>12,} in {produced_s[0]:.1f} s (separate process)")
        print(f"handled (2 ms each)   {handler.handled - 1:>12,} in {elapsed:.1f} s")
        print(f"peak inbox            {peak['inbox']:>12,} (inbox_size {INBOX})")
        print(f"peak batches between  {peak['outstanding']:>12,} (consumer thread -> trio)")
        print(f"pauses                {inbox.pauses - pauses:>12,}")
        print(f"rebalances            {bridge.rebalances - rebalances:>12,}")
        print(f"host RSS              {rss_start:>9.0f} MiB -> peak {peak['rss']:.0f} MiB")
        if as_json:
            handled = handler.handled - 1
            print_json(
                {
                    "commands": commands,
                    "produced_s": produced_s[0],
                    "handled": handled,
                    "handled_per_s": handled / elapsed,
                    "peak_inbox": peak["inbox"],
                    "peak_outstanding_batches": peak["outstanding"],
                    "pauses": inbox.pauses - pauses,
                    "rebalances": bridge.rebalances - rebalances,
                    "rss_start_mib": rss_start,
                    "rss_peak_mib": peak["rss"],
                    "ratio": peak["inbox"] / max(1, commands),
                    "ratio_means": "peak inbox / commands",
                }
            )


def main() -> None:
    """Parse arguments and run the flood."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--bootstrap", default=None)
    add_json_flag(parser)
    args = parser.parse_args()
    with broker(args.bootstrap) as bootstrap:
        trio.run(flood, bootstrap, args.commands, args.seconds, args.json)


if __name__ == "__main__":
    main()
