"""A three-step workflow against the same three hops as a ``then:`` chain, on Kafka.

Both contenders are one host process each on their defaults (confluent-kafka, at least
once unless ``--exactly-once``), on the same broker, in the same run, interleaved:

- **chain**: three echo nodes, the first's result forwarded to the second by ``then:``,
  the second's to the third; a command is done when the third answers.
- **workflow**: an orchestrator whose three steps send to three echo nodes, one after
  another (``depends_on``); a command is done when the orchestrator answers it. Each step
  is a command and a result, and the result comes back to the orchestrator's topic: the
  workflow moves about twice the records of the chain, and keeps a snapshot per instance
  in its changelog.

Throughput is the commands over the time from the first answer of the first hop (its
echo node's evt topic: work has begun) to the last final answer. The commands are all
in the topic before the host starts, so a contender's first *final* answer comes only
after most of the backlog has gone through its first hops; a rate counted from it (the
``tail`` figure, printed too) measures the last hop alone. Latency is PINGS single
commands each awaited end to end. Medians of RUNS. Target: workflow ≥ 0.5 of the chain.

    python bench/workflow.py [--commands 5000] [--pings 50] [--runs 3] [--exactly-once]
        [--bootstrap B] [--json]

Without --bootstrap it starts a local Apache Kafka on 127.0.0.1:29292 and stops it after.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition

from _kafka import broker, produce_commands
from _record import add_json_flag, print_json
from kafka_echo import (
    PARTITIONS,
    PRODUCER,
    PingClient,
    create,
    outputs,
    percentile,
    runtime_answers,
)
from onex_actors.cli._workers import WORKER_COMMAND
from onex_actors.core import cmd_topic, dlq_topic, evt_topic


def contracts(root: Path, tag: str, kind: str) -> tuple[str, str, str, list[str]]:
    """Write the contender's tree; return its runtime, entry node, final node and topics.

    Each hop carries the command's ``pad`` on (pings have no other field in common).
    """
    (root / "runtime").mkdir()
    (root / "nodes").mkdir()
    echoes = [f"{kind}-echo{i}-{tag}" for i in (1, 2, 3)]
    for index, node in enumerate(echoes):
        then = ""
        if kind == "chain" and index < 2:
            then = f"then: {{node_id: {echoes[index + 1]}, payload: {{pad: '$.result.pad'}}}}\n"
        (root / "nodes" / f"{node}.yaml").write_text(
            f"kind: effect\nnode_id: {node}\nversion: '0.1.0'\neffect_type: local\n{then}"
        )
    nodes = list(echoes)
    entry = final = echoes[0]
    if kind == "chain":
        final = echoes[2]
    else:
        entry = final = f"flow-{tag}"
        steps = "\n".join(
            f"    - name: s{i}\n      node_id: {node}\n"
            + (f"      depends_on: [s{i - 1}]\n" if i > 1 else "")
            + f"      payload: {{pad: {'input.pad' if i == 1 else f'steps.s{i - 1}.output.pad'}}}"
            for i, node in enumerate(echoes, start=1)
        )
        (root / "nodes" / f"{entry}.yaml").write_text(
            f"kind: orchestrator\nnode_id: {entry}\nversion: '0.1.0'\nworkflow:\n  steps:\n"
            f"{steps}\n  output: {{pad: steps.s3.output.pad}}\n"
        )
        nodes.append(entry)
    runtime = f"runtime-{kind}-{tag}"
    (root / "runtime" / f"{runtime}.yaml").write_text(
        f"kind: runtime_host\nnode_id: {runtime}\nversion: '0.1.0'\n"
        "subscriptions: {cmd_topics: ['onex.app.local.global.cmd.node.#']}\n"
        f"handlers: {{families: [local]}}\nhost_selector: {{node_ids: [{', '.join(nodes)}]}}\n"
    )
    topics = [t for n in nodes for t in (cmd_topic(n), evt_topic(n), dlq_topic(n))]
    return runtime, entry, final, topics  # the changelog: the host creates it, compacted


def run(
    bootstrap: str, kind: str, commands: int, pings: int, exactly_once: bool
) -> tuple[float, float, list[float]]:
    """One contender: commands/s (from work begun, and the tail's) and ping latencies (s)."""
    tag = uuid.uuid4().hex[:6]
    env = {
        **os.environ,
        "ONEX_BUS__KIND": "kafka",
        "ONEX_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "ONEX_KAFKA__CLIENT": "confluent",
        "ONEX_KAFKA__START_LOCAL_BROKER": "false",
        "ONEX_DELIVERY__MODE": "exactly_once" if exactly_once else "at_least_once",
    }
    with tempfile.TemporaryDirectory(prefix="onex-workflow-") as tree:
        root = Path(tree)
        runtime, entry, final, topics = contracts(root, tag, kind)
        first_hop = f"{kind}-echo1-{tag}"
        create(bootstrap, topics)
        produce_commands(bootstrap, entry, commands, **PRODUCER)
        options = ["--runtime-node-id", runtime, "--contracts-dir", str(root)]
        log = (root / "host.log").open("w")
        host = subprocess.Popen(
            [*WORKER_COMMAND, *options],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        try:
            assert host.stdout is not None
            for line in host.stdout:
                if " ready: " in line:
                    break
            else:
                raise RuntimeError(
                    f"the host never said it was ready (exit {host.wait()}): "
                    f"{(root / 'host.log').read_text()[-2000:]}"
                )
            # under exactly-once the answers a read_committed reader sees
            counted = committed_answers if exactly_once else outputs
            with (
                outputs(bootstrap, evt_topic(first_hop)) as begun,
                counted(bootstrap, evt_topic(final)) as answered,
            ):
                rate, tail = flow_rates(begun, answered, commands)
            ping = PingClient(bootstrap, entry, evt_topic(final))
            if kind == "chain":
                latencies = [ping.ping(same_flow) for _ in range(pings)]
            else:
                latencies = [ping.ping(runtime_answers) for _ in range(pings)]
            ping.close()
        finally:
            host.send_signal(signal.SIGTERM)
            host.wait(timeout=120)
            log.close()
    return rate, tail, latencies


def flow_rates(
    begun: Callable[[], int], answered: Callable[[], int], commands: int, timeout_s: float = 300
) -> tuple[float, float]:
    """Commands/s from the first hop's first answer to the last final answer; and the tail's.

    The tail's rate counts from the first final answer instead, as the script did before.
    """
    deadline = time.monotonic() + timeout_s
    while begun() < 1:
        if time.monotonic() > deadline:
            raise TimeoutError("the first hop never answered")
        time.sleep(0.005)
    started = time.monotonic()
    before = answered()
    first: tuple[float, int] | None = None
    while (done := answered()) < commands:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{done} of {commands} answered after {timeout_s} s")
        if first is None and done > 0:
            first = (time.monotonic(), done)
        time.sleep(0.02)
    ended = time.monotonic()
    tail_from, tail_before = first if first is not None else (started, before)
    return (commands - before) / (ended - started), (commands - tail_before) / max(
        ended - tail_from, 1e-3
    )


@contextmanager
def committed_answers(bootstrap: str, topic: str) -> Iterator[Callable[[], int]]:
    """How many records of ``topic`` a ``read_committed`` reader has read, when called.

    Under exactly-once a topic's end offsets count aborted records and transaction
    markers too; this counts what a reader is given.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    partitions = [KafkaTopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen = [0]

    def count() -> int:
        seen[0] += sum(len(batch) for batch in consumer.poll(timeout_ms=10).values())
        return seen[0]

    try:
        yield count
    finally:
        consumer.close()


def same_flow(value: bytes, command: object) -> bool:
    """The chain's last node answers in the command's flow."""
    from onex_actors.core import decode_envelope

    return decode_envelope(value).correlation_id == command.correlation_id  # type: ignore[attr-defined]


def main() -> None:
    """Run both contenders RUNS times, interleaved; print medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=5_000)
    parser.add_argument("--pings", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--exactly-once", action="store_true")
    parser.add_argument("--bootstrap", default=None)
    add_json_flag(parser)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float, list[float]]]] = {"chain": [], "workflow": []}
    with broker(args.bootstrap) as bootstrap:
        for index in range(args.runs):
            for kind in results:
                started = time.monotonic()
                rate, tail, latencies = run(
                    bootstrap, kind, args.commands, args.pings, args.exactly_once
                )
                results[kind].append((rate, tail, latencies))
                took = time.monotonic() - started
                p50 = percentile(latencies, 0.5)
                print(
                    f"run {index + 1} {kind:8} {rate:8,.0f} /s (tail {tail:8,.0f} /s)  "
                    f"p50 {p50:.1f} ms ({took:.0f} s)",
                    flush=True,
                )
    figures: dict[str, object] = {
        "commands": args.commands,
        "runs": args.runs,
        "exactly_once": args.exactly_once,
    }
    mode = "exactly once" if args.exactly_once else "at least once"
    print(f"\nmedians of {args.runs} runs, {args.commands:,} commands, {mode}:")
    for kind, runs in results.items():
        rate = statistics.median(r[0] for r in runs)
        tail = statistics.median(r[1] for r in runs)
        every = [latency for r in runs for latency in r[2]]
        p50, p99 = percentile(every, 0.5), percentile(every, 0.99)
        print(
            f"{kind:8} {rate:8,.0f} /s (tail {tail:8,.0f} /s)  p50 {p50:.1f} ms  p99 {p99:.1f} ms"
        )
        figures |= {
            f"{kind}_per_s": rate,
            f"{kind}_tail_per_s": tail,
            f"{kind}_p50_ms": p50,
            f"{kind}_p99_ms": p99,
        }
    tail_ratio = figures["workflow_tail_per_s"] / figures["chain_tail_per_s"]  # type: ignore[operator]
    print(f"workflow/chain from the first final answers (the tails): {tail_ratio:.2f}")
    figures["workflow_vs_chain_tail"] = tail_ratio
    ratio = figures["workflow_per_s"] / figures["chain_per_s"]  # type: ignore[operator]
    print(f"workflow/chain: {ratio:.2f}  (target >= 0.5)")
    figures["workflow_vs_chain"] = ratio
    if args.json:
        print_json(figures)


if __name__ == "__main__":
    main()
