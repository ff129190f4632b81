"""An ``http`` node with the contract's defaults against an endpoint that takes 20 ms.

COMMANDS commands over KEYS record keys (command ``n`` of a key carries ``seq: n``) are
produced to the node's command topic; a runtime host (opened from the config, bus on
Kafka, the node's contract all defaults) calls ``bench/_slow_endpoint.py``, which answers
each request with its own body after DELAY_S. Timed from its first result until the
result topic holds every result (as bench/kafka_echo.py times every contender). The
checker then reads every result back and checks,
independently of the runtime: each command answered exactly once with ``ok``, and each
key's results in the order its commands were sent (per partition, in offset order).
The ceiling a serial node would reach is 1 / DELAY_S commands/s.

    python bench/http_node.py [--commands 20000] [--keys 10000] [--delay 0.02] [--runs 3]
        [--bootstrap B] [--client confluent|kafka-python] [--json]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import trio
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from onex_actors.app import HostConfig, open_runtime_host
from onex_actors.core import (
    PARTITION_KEY_HEADER,
    cmd_topic,
    encode_envelope,
    evt_topic,
    new_command,
    record_headers,
    record_key,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _contracts import one_node
from _kafka import broker
from _record import add_json_flag, print_json
from kafka_echo import PARTITIONS, create, outputs, steady_rate

HERE = Path(__file__).resolve().parent
TARGET = 2_000
"""Commands/s the issue asks of the defaults (an endpoint of 20 ms, 10,000 keys)."""


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def produce(bootstrap: str, node: str, commands: int, keys: int) -> None:
    """Send ``commands`` commands, key ``k<i % keys>``, each with its key's next ``seq``."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=256 * 1024)
    for i in range(commands):
        key = f"k{i % keys}"
        command = new_command(
            node, {"key": key, "seq": i // keys}, headers={PARTITION_KEY_HEADER: key}
        )
        producer.send(
            cmd_topic(node),
            value=encode_envelope(command),
            key=record_key(command),
            headers=record_headers(command),
        )
    producer.flush()
    producer.close()


def check(bootstrap: str, node: str, commands: int) -> list[str]:
    """Read every result back; return what is wrong (nothing, when all is well)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(evt_topic(node), p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    ends = consumer.end_offsets(partitions)
    problems: list[str] = []
    answered: Counter[str] = Counter()
    last_seq: dict[str, int] = {}
    while any(consumer.position(tp) < ends[tp] for tp in partitions):
        for records in consumer.poll(timeout_ms=1000).values():
            for record in records:
                result = json.loads(record.value)
                answered[result["causation_id"]] += 1
                if result["status"] != "ok":
                    problems.append(f"offset {record.offset}: {result['status']} {result['error']}")
                    continue
                sent = result["payload"]["body"]
                key, seq = sent["key"], sent["seq"]
                if seq <= last_seq.get(key, -1):
                    problems.append(f"key {key}: seq {seq} after {last_seq[key]}")
                last_seq[key] = seq
    consumer.close()
    if len(answered) != commands:
        problems.append(f"{len(answered)} commands answered of {commands}")
    twice = sum(1 for n in answered.values() if n > 1)
    if twice:
        problems.append(f"{twice} commands answered more than once")
    return problems


async def one_run(bootstrap: str, commands: int, keys: int, port: int, client: str) -> float:
    """One run: commands/s of the http node, checked."""
    tag = uuid.uuid4().hex[:8]
    node, runtime = f"http-{tag}", f"runtime-{tag}"
    create(bootstrap, [cmd_topic(node), evt_topic(node)])
    await trio.to_thread.run_sync(produce, bootstrap, node, commands, keys)
    contracts = one_node(
        node, runtime, family="http", http={"url_template": f"http://127.0.0.1:{port}/echo"}
    )
    config = HostConfig.model_validate(
        {
            "bus": {"kind": "kafka"},
            "kafka": {"bootstrap_servers": bootstrap, "client": client},
            "http": {"allowlist": [f"127.0.0.1:{port}"]},
        }
    )
    async with open_runtime_host(runtime, config, registry=contracts):
        with outputs(bootstrap, evt_topic(node)) as count:
            rate = await trio.to_thread.run_sync(steady_rate, count, commands, 600)
    problems = await trio.to_thread.run_sync(check, bootstrap, node, commands)
    if problems:
        raise SystemExit(f"{len(problems)} problems, first: {problems[:5]}")
    return rate


def main() -> None:
    """Run it RUNS times; print each rate, the median, and the ratio to the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--client", choices=["kafka-python", "confluent"], default="confluent")
    add_json_flag(parser)
    args = parser.parse_args()
    port = free_port()
    endpoint = subprocess.Popen(
        [sys.executable, str(HERE / "_slow_endpoint.py"), str(port), str(args.delay)],
        stdout=subprocess.PIPE,
    )
    try:
        assert endpoint.stdout is not None
        if endpoint.stdout.readline().strip() != b"ready":
            raise SystemExit("the endpoint did not start")
        rates = []
        with broker(args.bootstrap) as bootstrap:
            for run in range(args.runs):
                rate = trio.run(one_run, bootstrap, args.commands, args.keys, port, args.client)
                rates.append(rate)
                print(f"run {run + 1}: {rate:,.0f} commands/s, every key in order", flush=True)
    finally:
        endpoint.kill()
        endpoint.wait()
    median = statistics.median(rates)
    serial = 1 / args.delay
    print(
        f"\nhttp node, defaults, {args.delay * 1000:g} ms endpoint, {args.keys:,} keys, "
        f"{args.commands:,} commands ({args.client}): median {median:,.0f} commands/s"
    )
    ratio, speedup = median / TARGET, median / serial
    print(f"vs the target {TARGET:,}: {ratio:.2f}; vs one at a time: {speedup:.0f}x")
    if args.json:
        print_json(
            {
                "runs": args.runs,
                "commands": args.commands,
                "keys": args.keys,
                "delay_s": args.delay,
                "client": args.client,
                "http_node_per_s": median,
                "ratio": median / TARGET,
            }
        )


if __name__ == "__main__":
    main()
