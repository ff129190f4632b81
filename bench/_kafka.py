"""Kafka helpers for benchmarks: a broker for the run, and commands produced in bulk.

As a script it produces from a separate process (so the producer does not share the
measured process's GIL):

    python bench/_kafka.py BOOTSTRAP TOPIC NODE COUNT
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kafka import KafkaProducer

from onex_actors.core import (
    PARTITION_KEY_HEADER,
    cmd_topic,
    encode_envelope,
    new_command,
    record_headers,
    record_key,
)
from onex_actors.devinfra import LocalKafka


@contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    """The given broker, or a local Apache Kafka on 127.0.0.1:29292 for the run."""
    if bootstrap:
        yield bootstrap
        return
    local = LocalKafka(port=29292, controller_port=29293)
    local.stop()
    local.remove_data()
    try:
        yield local.start()
    finally:
        local.stop()
        local.remove_data()


KEYS = 10_000
"""Record keys of the commands a benchmark sends (``partition_key``), as many as a
service keyed by customer or order would see in a burst."""


def produce_commands(
    bootstrap: str,
    node: str,
    count: int,
    *,
    topic: str | None = None,
    keys: int = KEYS,
    fold: bool = False,
    **producer: Any,
) -> None:
    """Send ``count`` ~200-byte commands for ``node`` over ``keys`` record keys, and wait
    until the broker has them; command ``i`` has key ``k<i % keys>``.

    ``fold``: commands for a reducer keyed by ``input.k``: the payload names the key too,
    and the record key is the reducer's stored key (``global/k<i % keys>``), as ``onex
    emit`` writes it, so each command lands where its key's state lives.
    """
    client = KafkaProducer(bootstrap_servers=bootstrap, **producer)
    for i in range(count):
        key = f"k{i % keys}"
        command = new_command(
            node,
            {"i": i, "k": key, "pad": "x" * 34} if fold else {"i": i, "pad": "x" * 40},
            headers={PARTITION_KEY_HEADER: f"global/{key}" if fold else key},
        )
        client.send(
            topic or cmd_topic(node),
            value=encode_envelope(command),
            key=record_key(command),
            headers=record_headers(command),
        )
    client.flush()
    client.close()


if __name__ == "__main__":
    produce_commands(
        sys.argv[1],
        sys.argv[3],
        int(sys.argv[4]),
        topic=sys.argv[2],
        linger_ms=20,
        batch_size=256 * 1024,
    )
