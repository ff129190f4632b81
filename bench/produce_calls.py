"""What librdkafka's produce calls cost a state record: one ``produce`` each, or ``produce_batch``.

    python bench/produce_calls.py [--records 100000] [--batches 4 12 50] [--runs 3] [--json]

One confluent-kafka producer as the runtime configures it (idempotent, ``acks=all``,
``linger.ms=0``) writes changelog-like records (a 60-byte JSON state under one of 10,000
keys) to a 4-partition compacted topic, a list at a time, as a slice's outputs go out.
Timed is the calling thread's time inside the calls (what the host's one GIL-bound
thread pays), per record: ``single`` calls ``produce`` with a delivery callback per
record; ``batch`` calls ``produce_batch`` once per partition of the list with a callback
per message. Delivery is awaited after the timed part. Medians of ``--runs``.

Without ``--bootstrap`` it starts a local Apache Kafka on 127.0.0.1:29292 for the run.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections import defaultdict
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from _kafka import broker
from _record import add_json_flag, print_json

PARTITIONS = 4
KEYS = 10_000


def records(count: int) -> list[tuple[bytes, bytes, int]]:
    """``count`` (value, key, partition) triples, keys spread over the partitions."""
    return [
        (
            b'{"value":{"count":%d},"recent":["e8af79ba"],"offset":%d}' % (i, i),
            b"global/key-%d" % (i % KEYS),
            i % PARTITIONS,
        )
        for i in range(count)
    ]


def measure(bootstrap: str, mode: str, batch: int, count: int) -> float:
    """Microseconds a record inside the produce calls, every record delivered."""
    topic = f"bench-produce-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {"cleanup.policy": "compact"}
    admin.create_topics([NewTopic(topic, PARTITIONS, 1, config=config)])[topic].result()
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 0,
        }
    )
    delivered = [0]

    # a callback bound to its record's index per record, as the runtime's producers build
    def done(_index: int, error: KafkaError | None, _message: Message) -> None:
        assert error is None, error
        delivered[0] += 1

    triples = records(count)
    spent = 0.0
    for start in range(0, count, batch):
        chunk = triples[start : start + batch]
        began = time.perf_counter()
        if mode == "single":
            for index, (value, key, partition) in enumerate(chunk, start):
                while True:
                    try:
                        producer.produce(
                            topic,
                            value,
                            key,
                            partition=partition,
                            headers=[],
                            on_delivery=partial(done, index),
                        )
                        break
                    except BufferError:
                        producer.poll(0.05)
        else:
            # produce_batch ignores a message's own "partition": one call per partition
            by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for index, (value, key, partition) in enumerate(chunk, start):
                by_partition[partition].append(
                    {"value": value, "key": key, "callback": partial(done, index)}
                )
            for partition, messages in by_partition.items():
                queued = producer.produce_batch(topic, messages, partition=partition)
                assert queued == len(messages), [m.get("_error") for m in messages]
        spent += time.perf_counter() - began
        producer.poll(0)
    producer.flush(60)
    assert delivered[0] == count, f"{delivered[0]} of {count} delivered"
    admin.delete_topics([topic])
    return spent / count * 1e6


def main() -> None:
    """Time both ways for each batch size; print medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 12, 50])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bootstrap", default=None)
    add_json_flag(parser)
    args = parser.parse_args()
    figures: dict[str, Any] = {"records": args.records, "runs": args.runs}
    with broker(args.bootstrap) as bootstrap:
        for batch in args.batches:
            medians = {}
            for mode in ("single", "batch"):
                runs = [measure(bootstrap, mode, batch, args.records) for _ in range(args.runs)]
                medians[mode] = statistics.median(runs)
                figures[f"{mode}_{batch}_us"] = medians[mode]
            print(
                f"lists of {batch:3}: produce {medians['single']:.2f} µs a record, "
                f"produce_batch {medians['batch']:.2f} µs "
                f"({medians['batch'] / medians['single']:.2f} of it; medians of {args.runs})"
            )
    last = args.batches[-1]
    figures["ratio"] = figures[f"batch_{last}_us"] / figures[f"single_{last}_us"]
    if args.json:
        print_json(figures)


if __name__ == "__main__":
    main()
