"""Repairs for two kafka-python 3.0 consumer bugs that silently stop consumption.

Both leave the consumer polling, healthy and silent, while records wait:

1. **A resumed partition is never fetched again.** When a partition is paused while
   part of a fetched batch is unread, the fetcher parks the rest of the batch and
   stops fetching the partition. It hands the parked batch back only if its in-line
   slot is ``None``; but a batch read to its end stays in that slot (drained, falsy,
   not ``None``). Repair: empty a drained slot before every fetch, which is what the
   rest of the fetcher already treats it as.
2. **A rebalance's new assignment is never applied.** A ``poll`` whose time runs out
   during a rejoin leaves the join in flight, to be picked up by the next ``poll``.
   When the rejoin was caused by a metadata change (a topic matching the subscribed
   pattern appeared), the leader's assignment step makes the coordinator believe no
   rejoin is needed, so the next ``poll`` never collects the finished join and the
   member keeps its old partitions. Repair: a join in flight or finished but not yet
   collected counts as a rejoin needed.

``tests/integration/test_kafka_repairs.py`` reproduces both against a real broker.
Drop each repair once kafka-python fixes it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer

__all__ = ["repair_consumer"]


def repair_consumer(consumer: KafkaConsumer) -> None:
    """Apply both repairs to ``consumer`` (each only where its bug's code is present)."""
    _repair_parked_partitions(consumer)
    _repair_uncollected_join(consumer)


def _repair_parked_partitions(consumer: KafkaConsumer) -> None:
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


def _repair_uncollected_join(consumer: KafkaConsumer) -> None:
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or not hasattr(coordinator, "_join_task"):
        return
    need_rejoin: Callable[[], bool] = coordinator.need_rejoin

    @functools.wraps(need_rejoin)
    def need_rejoin_repaired() -> bool:
        return coordinator._join_task is not None or need_rejoin()

    coordinator.need_rejoin = need_rejoin_repaired
