"""A repair for kafka-python 3.0's fetcher, which can strand a resumed partition.

When a partition is paused while part of a fetched batch is still unread,
kafka-python parks the rest of that batch and stops fetching the partition. On a later
``poll`` it gives the parked batch back only if its in-line slot is ``None``; but a
batch that was read to the end stays in that slot (drained, falsy, not ``None``). A
partition resumed after another partition's batch was read to the end is then never
fetched again: the consumer keeps polling and receives nothing from it, with no error.

The repair empties the drained slot before every fetch, which is what the rest of the
fetcher already treats a drained batch as. ``tests/integration/test_kafka_fetcher_fix.py``
reproduces the stall against a real broker.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer

__all__ = ["repair_parked_partitions"]


def repair_parked_partitions(consumer: KafkaConsumer) -> None:
    """Make ``consumer`` hand back parked batches once their partition is resumed.

    Does nothing on a kafka-python whose fetcher is laid out differently (the bug is
    specific to 3.0's parking of paused batches).
    """
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not hasattr(fetcher, "_paused_partition_records"):
        return
    fetched_records: Callable[..., Any] = fetcher.fetched_records

    @functools.wraps(fetched_records)
    def fetched_records_repaired(*args: Any, **kwargs: Any) -> Any:
        current = fetcher._next_partition_records
        if current is not None and not current:
            fetcher._next_partition_records = None
        return fetched_records(*args, **kwargs)

    fetcher.fetched_records = fetched_records_repaired
