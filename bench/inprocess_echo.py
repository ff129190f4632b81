"""Echo on the in-process bus: the runtime's own overhead, no broker at all.

Throughput: COMMANDS ~200-byte command records are appended to echo's cmd topic first;
then a runtime host is started and timed until its evt topic holds every result.
The baseline, in the same process, is the least any runtime must do per envelope:
decode the command record, build the result envelope, encode it.

Latency: one command in flight at a time (PINGS of them), from publishing the command
record to the result record's arrival.

    python bench/inprocess_echo.py [--commands 100000] [--pings 2000] [--runs 3]

``--payload-schema`` times the runtime a second time in each run with a payload_schema
and a result_schema on echo (what a contract declaring both costs), and prints the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import trio

from onex_actors.app import HostConfig, open_runtime_host
from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import (
    PARTITION_KEY_HEADER,
    cmd_topic,
    decode_envelope,
    encode_envelope,
    evt_topic,
    new_command,
    record_headers,
    record_key,
    result_of,
)
from onex_actors.runtime import OutboundRecord

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _contracts import one_node
from _kafka import KEYS
from _record import add_gc_flag, add_json_flag, apply_gc, print_json, record

NODE, RUNTIME = "echo-node", "runtime-bench"
ECHO_SCHEMA = {
    "type": "object",
    "properties": {"i": {"type": "integer", "minimum": 0}, "pad": {"type": "string"}},
    "required": ["i", "pad"],
    "additionalProperties": False,
}
"""What the bench's commands (and so echo's results) hold, as a contract would say it."""


def command_record(i: int) -> OutboundRecord:
    """One ~200-byte echo command as the bus carries it, over ``KEYS`` record keys."""
    command = new_command(
        NODE, {"i": i, "pad": "x" * 40}, headers={PARTITION_KEY_HEADER: f"k{i % KEYS}"}
    )
    return OutboundRecord(
        cmd_topic(NODE),
        encode_envelope(command),
        key=record_key(command),
        headers=tuple(record_headers(command)),
    )


def baseline_rate(commands: int) -> float:
    """Envelopes/s for decode → result → encode alone, one envelope after another."""
    values = [command_record(i).value for i in range(commands)]
    started = time.perf_counter()
    for value in values:
        encode_envelope(result_of(decode_envelope(value), {"echo": True}))
    return commands / (time.perf_counter() - started)


async def runtime_rate(
    commands: int, pings: int, gc_threshold: int | None, schemas: bool = False
) -> tuple[float, list[float]]:
    """Throughput (envelopes/s) and ping latencies (s) of a runtime hosting echo."""
    bus = InProcessBus()
    for i in range(commands):
        await bus.publish([command_record(i)])
    declared = {"payload_schema": ECHO_SCHEMA, "result_schema": ECHO_SCHEMA} if schemas else {}
    contracts = one_node(NODE, RUNTIME, **declared)  # the contract's defaults
    config = HostConfig(gc_threshold=gc_threshold)
    async with open_runtime_host(RUNTIME, config, registry=contracts, bus=bus):
        started = time.perf_counter()
        await bus.wait_for_records(evt_topic(NODE), commands)
        rate = commands / (time.perf_counter() - started)
        latencies = []
        for i in range(pings):
            record = command_record(i)
            started = time.perf_counter()
            await bus.publish([record])
            await bus.wait_for_records(evt_topic(NODE), commands + i + 1)
            latencies.append(time.perf_counter() - started)
    return rate, latencies


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values``, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    """Run baseline and runtime RUNS times; print medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=100_000)
    parser.add_argument("--pings", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="store medians for the plot")
    parser.add_argument(
        "--payload-schema", action="store_true", help="also time echo with both schemas"
    )
    add_json_flag(parser)
    add_gc_flag(parser)
    args = parser.parse_args()
    gc_threshold = apply_gc(args)
    base, rates, p50s, p99s, checked = [], [], [], [], []
    for run in range(args.runs):
        base.append(baseline_rate(args.commands))
        rate, latencies = trio.run(runtime_rate, args.commands, args.pings, gc_threshold)
        rates.append(rate)
        if args.payload_schema:
            checked.append(trio.run(runtime_rate, args.commands, 0, gc_threshold, True)[0])
            print(f"run {run + 1}: with payload and result schemas {checked[-1]:>9,.0f} env/s")
        p50s.append(percentile(latencies, 0.5))
        p99s.append(percentile(latencies, 0.99))
        print(
            f"run {run + 1}: codec floor {base[-1]:>9,.0f} env/s   runtime {rate:>9,.0f} env/s"
            f"   ping p50 {p50s[-1]:.3f} ms  p99 {p99s[-1]:.3f} ms",
            flush=True,
        )
    floor, rate = statistics.median(base), statistics.median(rates)
    print(f"\nmedians of {args.runs} runs, {args.commands:,} commands, {args.pings:,} pings:")
    print(f"codec floor (decode, result, encode)  {floor:>9,.0f} env/s")
    print(f"onex runtime (echo), in-process bus   {rate:>9,.0f} env/s  (target >= 50,000)")
    print(f"ratio runtime/floor: {rate / floor:.2f}")
    print(f"ping p50 {statistics.median(p50s):.3f} ms  p99 {statistics.median(p99s):.3f} ms")
    with_schemas = statistics.median(checked) if checked else None
    if with_schemas is not None:
        print(
            f"with payload_schema and result_schema  {with_schemas:>9,.0f} env/s  "
            f"(ratio with/without {with_schemas / rate:.3f}; goal >= 0.90)"
        )
    if args.json:
        print_json(
            {
                "runs": args.runs,
                "commands": args.commands,
                "gc_threshold": gc_threshold,
                "floor_per_s": floor,
                "runtime_per_s": rate,
                "ratio": rate / floor,
                "p50_ms": statistics.median(p50s),
                "p99_ms": statistics.median(p99s),
                "with_schemas_per_s": with_schemas,
            }
        )
    if args.record:
        record(
            "inprocess_echo",
            {
                "runs": args.runs,
                "commands": args.commands,
                "floor_env_s": floor,
                "runtime_env_s": rate,
                "p50_ms": statistics.median(p50s),
                "p99_ms": statistics.median(p99s),
            },
        )


if __name__ == "__main__":
    main()
