"""Restoring a reducer's partition: how long a host takes to read its state back.

A changelog partition holding KEYS keys of about 200 bytes each (one record per key,
as compaction leaves it, plus UPDATES older records of the same keys that compaction has
not removed yet) is written to a local Apache Kafka; then the runtime's restore reads it
back into a reducer's store, through the bus a host opens (each Kafka client), timed from
the first read to the last key loaded. Also the store's resident memory per key held.
Medians of RUNS.

With ``--store disk`` (or ``both``) the same partition is restored into the on-disk
store (LMDB) cold, its checkpoint saved as at a clean stop, TAIL more records written (as
another host would while this one is down), and the store reopened and restored again:
the restart, which reads only the tail (target <= 1 s).

    python bench/state_restore.py [--keys 100000] [--updates 0] [--runs 3] [--tail 1000]
        [--client kafka-python|confluent|both] [--store memory|disk|both] [--json]

Without --bootstrap it starts a local Apache Kafka on 127.0.0.1:29292 and stops it after.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import trio
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from onex_actors.bridges.lmdb import LmdbStates
from onex_actors.core import KeyState, ReducerContract, parse_contract
from onex_actors.runtime import (
    ChangelogBus,
    ReducerHandler,
    StateRestorer,
    StateStore,
    TopicPartition,
)

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


async def restore_once(
    bus: ChangelogBus, topic: str, states: StateStore | None = None, *, checkpoint: bool = False
) -> tuple[float, int, int]:
    """Restore the partition into a fresh reducer; return seconds, records read, keys.

    ``checkpoint``: then save its checkpoint and close the store (a clean stop).
    """
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
        states=states,
    )
    restorer = StateRestorer(bus, {"bench-tally": handler})
    started = time.perf_counter()
    await restorer.restore(handler, TopicPartition("bench-commands", PARTITION))
    seconds = time.perf_counter() - started
    (report,) = restorer.restores
    if checkpoint:
        await restorer.checkpoint()
    await handler.aclose()
    return seconds, report.records, report.keys


def _config(bootstrap: str, client: str) -> Any:
    from onex_actors.app import HostConfig

    return HostConfig.model_validate(
        {
            "bus": {"kind": "kafka"},
            "kafka": {
                "bootstrap_servers": bootstrap,
                "client": client,
                "start_local_broker": False,
            },
        }
    )


async def measure(bootstrap: str, client: str, topic: str) -> tuple[float, int, int, float]:
    """One restore through ``client``'s bus: seconds, records, keys and KiB of RSS per key."""
    from onex_actors.app._bootstrap import open_bus

    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    async with open_bus(_config(bootstrap, client)) as bus:
        assert isinstance(bus, ChangelogBus)
        seconds, records, keys = await restore_once(bus, topic)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return seconds, records, keys, (after - before) / max(keys, 1)


async def measure_disk(
    bootstrap: str, client: str, topic: str, tail: int, keys: int
) -> tuple[float, float, int, int]:
    """Cold restore into LMDB, clean stop, ``tail`` records more, restart.

    Return the cold and the restart seconds, the records the restart read, its keys.
    """
    from onex_actors.app._bootstrap import open_bus

    with tempfile.TemporaryDirectory(prefix="onex-bench-lmdb-") as folder:
        async with open_bus(_config(bootstrap, client)) as bus:
            assert isinstance(bus, ChangelogBus)
            cold, _, _ = await restore_once(bus, topic, LmdbStates(Path(folder)), checkpoint=True)
            await trio.to_thread.run_sync(write_tail, bootstrap, topic, tail, keys)
            warm, records, held = await restore_once(bus, topic, LmdbStates(Path(folder)))
    return cold, warm, records, held


def write_tail(bootstrap: str, topic: str, count: int, keys: int) -> None:
    """Write ``count`` newer states of existing keys (what another host wrote meanwhile)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks=1)
    for i in range(count):
        state = KeyState({"count": i, "pad": "y" * 150}, PARTITION, 10**9 + i)
        key = f"global/k{i % keys}".encode()
        producer.send(topic, key=key, value=state.to_bytes(), partition=PARTITION)
    producer.flush()
    producer.close()


def main() -> None:
    """Write the changelog once, restore it RUNS times per client, print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--client", choices=["kafka-python", "confluent", "both"], default="both")
    parser.add_argument("--store", choices=["memory", "disk", "both"], default="both")
    parser.add_argument("--tail", type=int, default=1_000)
    add_json_flag(parser)
    args = parser.parse_args()
    clients = ["kafka-python", "confluent"] if args.client == "both" else [args.client]
    figures: dict[str, Any] = {"keys": args.keys, "updates": args.updates, "runs": args.runs}
    with broker(args.bootstrap) as bootstrap:
        topic = f"onex.app.local.global.state.node.bench-{uuid.uuid4().hex[:6]}.v1"
        written = write_changelog(bootstrap, topic, args.keys, args.updates)
        print(f"{written:,} changelog records ({args.keys:,} keys) in {topic}[{PARTITION}]")
        for client in clients if args.store != "disk" else ():
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
        for client in clients if args.store != "memory" else ():
            disk = [
                trio.run(measure_disk, bootstrap, client, topic, args.tail, args.keys)
                for _ in range(args.runs)
            ]
            cold = statistics.median(r[0] for r in disk)
            warm = statistics.median(r[1] for r in disk)
            records, keys = disk[0][2], disk[0][3]
            print(
                f"{client:13} on disk: cold restore {cold:.2f} s, restart after a clean stop "
                f"{warm:.3f} s ({records:,} tail records read, {keys:,} keys held; medians of "
                f"{args.runs})  (target <= 1 s)"
            )
            name = client.replace("-", "_")
            figures |= {f"{name}_disk_cold_restore_s": cold, f"{name}_disk_restart_s": warm}
            assert keys == args.keys, f"restart held {keys} keys of {args.keys}"
            assert records == args.tail, f"restart read {records} records, not the {args.tail}"
    if args.json:
        print_json(figures)


if __name__ == "__main__":
    main()
