"""Restoring a reducer's partition: how long a host takes to read its state back.

A changelog partition holding KEYS keys of about 200 bytes each (one record per key,
as compaction leaves it, plus UPDATES older records of the same keys that compaction has
not removed yet) is written to a local Apache Kafka; then the runtime's restore reads it
back into a reducer's store, through the bus a host opens (each Kafka client), timed from
the first read to the last key loaded. Also the store's resident memory per key held.
Medians of RUNS.

    python bench/state_restore.py [--keys 100000] [--updates 0] [--runs 3]
        [--client kafka-python|confluent|both] [--json]

Without --bootstrap it starts a local Apache Kafka on 127.0.0.1:29292 and stops it after.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import trio
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from onex_actors.core import KeyState, ReducerContract, parse_contract
from onex_actors.runtime import ChangelogBus, ReducerHandler, StateRestorer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kafka import broker
from _record import add_json_flag, print_json

PARTITIONS = 4
PARTITION = 0


def write_changelog(bootstrap: str, topic: str, keys: int, updates: int) -> int:
    """Write ``keys`` states (and ``updates`` older ones first) to one partition."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics(
        [NewTopic(topic, PARTITIONS, 1, topic_configs={"cleanup.policy": "compact"})]
    )
    admin.close()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024, acks=1
    )
    written = 0
    for round_ in range(2 if updates else 1):
        count = updates if round_ == 0 and updates else keys
        for i in range(count):
            state = KeyState(
                {"count": i, "total": i * 7, "name": f"customer number {i}", "pad": "x" * 90},
                PARTITION,
                i,
                (str(uuid.UUID(int=i)),),
                "2026-12-04T00:00:00+00:00",
            )
            key = f"global/k{i % keys}".encode()
            producer.send(topic, key=key, value=state.to_bytes(), partition=PARTITION)
            written += 1
    producer.flush()
    producer.close()
    return written


async def restore_once(bus: ChangelogBus, topic: str) -> tuple[float, int, int]:
    """Restore the partition into a fresh reducer; return seconds, records read, keys."""
    contract = parse_contract(
        {
            "kind": "reducer",
            "node_id": "bench-tally",
            "version": "0.1.0",
            "key": "input.k",
            "fold": {"assign": {"count": "state.count + 1"}},
        },
        source="<bench>",
    )
    assert isinstance(contract, ReducerContract)
    handler = ReducerHandler(
        contract,
        cmd_topic="bench-commands",
        state_topic=topic,
        intent_topics={},
        partitions=PARTITIONS,
    )
    restorer = StateRestorer(bus, {"bench-tally": handler})
    started = time.perf_counter()
    await restorer.restore(handler, TopicPartition("bench-commands", PARTITION))
    seconds = time.perf_counter() - started
    (report,) = restorer.restores
    return seconds, report.records, report.keys


async def measure(bootstrap: str, client: str, topic: str) -> tuple[float, int, int, float]:
    """One restore through ``client``'s bus: seconds, records, keys and KiB of RSS per key."""
    from onex_actors.app import HostConfig
    from onex_actors.app._bootstrap import open_bus

    config = HostConfig.model_validate(
        {
            "bus": {"kind": "kafka"},
            "kafka": {
                "bootstrap_servers": bootstrap,
                "client": client,
                "start_local_broker": False,
            },
        }
    )
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    async with open_bus(config) as bus:
        assert isinstance(bus, ChangelogBus)
        seconds, records, keys = await restore_once(bus, topic)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return seconds, records, keys, (after - before) / max(keys, 1)


def main() -> None:
    """Write the changelog once, restore it RUNS times per client, print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--client", choices=["kafka-python", "confluent", "both"], default="both")
    add_json_flag(parser)
    args = parser.parse_args()
    clients = ["kafka-python", "confluent"] if args.client == "both" else [args.client]
    figures: dict[str, Any] = {"keys": args.keys, "updates": args.updates, "runs": args.runs}
    with broker(args.bootstrap) as bootstrap:
        topic = f"onex.app.local.global.state.node.bench-{uuid.uuid4().hex[:6]}.v1"
        written = write_changelog(bootstrap, topic, args.keys, args.updates)
        print(f"{written:,} changelog records ({args.keys:,} keys) in {topic}[{PARTITION}]")
        for client in clients:
            runs = [trio.run(measure, bootstrap, client, topic) for _ in range(args.runs)]
            seconds = statistics.median(r[0] for r in runs)
            records, keys = runs[0][1], runs[0][2]
            first_rss = runs[0][3]  # the first restore grows the process; later ones reuse
            print(
                f"{client:13} restore {seconds:.2f} s (median of {args.runs}): {records:,} "
                f"records, {keys:,} keys, {records / seconds:,.0f} records/s; first restore "
                f"grew RSS by {first_rss:.2f} KiB per key  (target <= 5 s)"
            )
            name = client.replace("-", "_")
            figures |= {
                f"{name}_restore_s": seconds,
                f"{name}_records_per_s": records / seconds,
                f"{name}_rss_kib_per_key": first_rss,
            }
            assert keys == args.keys, f"restored {keys} keys of {args.keys}"
    if args.json:
        print_json(figures)


if __name__ == "__main__":
    main()
