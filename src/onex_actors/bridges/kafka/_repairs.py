"""Repairs for five kafka-python 3.0 consumer bugs that stop consumption or skip records.

The first four leave the consumer polling, healthy and silent, while records wait:

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
3. **A join that finishes between two polls is thrown away.** The next ``poll`` sees
   the finished join and sends a new JoinGroup instead of collecting its result. When
   every join takes longer than one ``poll`` (tansu answers a JoinGroup only after
   about half the session timeout; our polls last 50 ms), the member rejoins forever
   and is never assigned anything. Repair: the next ``poll`` collects the result of a
   join it left in flight, finished or not.
4. **A record the client cannot read wedges the fetcher.** When reading a fetched batch
   raises (a codec the client lacks, a corrupt batch), the batch stays in the fetcher's
   in-line slot as a spent generator: every later ``poll`` loops on it forever at full
   CPU, inside one call. Repair: the error leaves ``poll`` as ``UnreadableRecord``
   naming the partition and offset, with the slot emptied; the caller dead-letters
   that offset and seeks past it.

The fifth skips records:

5. **A partition kept across an eager rebalance goes on from where it was fetched.**
   Under the eager protocol every partition is revoked before the JoinGroup, so the
   runtime voids the records of each that are in flight; Kafka's Java consumer then
   wipes every partition's position (``assignFromSubscribed(emptySet())``), and a
   partition the member is given back is read again from its last commit. kafka-python
   keeps the position of a partition it is given back, so its voided records are never
   read again, and a commit past them skips them (a reducer lost a command at least
   once: neither answered nor folded). Repair: after the revocation, the assignment is
   emptied as Java's is; the positions of the partitions given back are fetched from
   the group's commits.

``tests/integration/test_kafka_repairs.py`` reproduces them against a real broker.
Drop each repair once kafka-python fixes it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Final

import kafka
from kafka import KafkaConsumer
from kafka.coordinator.assignors.abstract import RebalanceProtocol

__all__ = ["REPAIRS_WRITTEN_FOR", "UnreadableRecord", "repair_consumer"]

logger = logging.getLogger("onex_actors.kafka")


class UnreadableRecord(Exception):
    """``poll`` met a record it cannot read at ``topic``/``partition``/``offset``."""

    def __init__(self, topic: str, partition: int, offset: int, cause: BaseException) -> None:
        super().__init__(
            f"topic {topic} partition {partition} offset {offset}: {type(cause).__name__}: {cause}"
        )
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.cause = cause


REPAIRS_WRITTEN_FOR: Final = "3.0.12"
"""The kafka-python version whose internals the repairs patch (pinned in pyproject.toml)."""


def repair_consumer(consumer: KafkaConsumer) -> dict[str, bool]:
    """Apply the repairs to ``consumer``; say, per repair, whether it could be applied.

    A repair whose internals are missing (another kafka-python) is skipped and logged
    as a warning: the bug it guards against may then be back, or fixed upstream.
    """
    applied = {
        "parked_partitions": _repair_parked_partitions(consumer),
        "uncollected_join": _repair_uncollected_join(consumer),
        "discarded_join": _repair_discarded_join(consumer),
        "unreadable_batch": _repair_unreadable_batch(consumer),
        "kept_positions": _repair_kept_positions(consumer),
    }
    missing = [name for name, done in applied.items() if not done]
    if missing:
        logger.warning(
            "kafka-python %s: repairs %s not applied (written for %s; the internals they "
            "patch are missing). See onex_actors/bridges/kafka/_repairs.py",
            kafka.__version__,
            ", ".join(missing),
            REPAIRS_WRITTEN_FOR,
        )
    return applied


def _repair_parked_partitions(consumer: KafkaConsumer) -> bool:
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not hasattr(fetcher, "_paused_partition_records"):
        return False
    fetched_records: Callable[..., Any] = fetcher.fetched_records

    @functools.wraps(fetched_records)
    def fetched_records_repaired(*args: Any, **kwargs: Any) -> Any:
        current = fetcher._next_partition_records
        if current is not None and not current:
            fetcher._next_partition_records = None
        return fetched_records(*args, **kwargs)

    fetcher.fetched_records = fetched_records_repaired
    return True


def _repair_uncollected_join(consumer: KafkaConsumer) -> bool:
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or not hasattr(coordinator, "_join_task"):
        return False
    need_rejoin: Callable[[], bool] = coordinator.need_rejoin

    @functools.wraps(need_rejoin)
    def need_rejoin_repaired() -> bool:
        return coordinator._join_task is not None or need_rejoin()

    coordinator.need_rejoin = need_rejoin_repaired
    return True


class _JoinLeftInFlight:
    """A join a timed-out ``poll`` left behind: never "done" to the coordinator's loop.

    The loop then awaits it (returning its result at once when it has finished)
    instead of replacing it with a new JoinGroup.
    """

    is_done = False

    def __init__(self, task: Any) -> None:
        self.task = task

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)

    def __await__(self) -> Any:
        return self.task.__await__()


def _repair_discarded_join(consumer: KafkaConsumer) -> bool:
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or not hasattr(coordinator, "join_group_async"):
        return False
    join_group_async: Callable[..., Any] = coordinator.join_group_async

    @functools.wraps(join_group_async)
    async def join_group_repaired(*args: Any, **kwargs: Any) -> Any:
        try:
            return await join_group_async(*args, **kwargs)
        finally:
            task = coordinator._join_task
            if task is not None and not isinstance(task, _JoinLeftInFlight):
                coordinator._join_task = _JoinLeftInFlight(task)

    coordinator.join_group_async = join_group_repaired
    return True


def _repair_unreadable_batch(consumer: KafkaConsumer) -> bool:
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not hasattr(fetcher, "_next_partition_records"):
        return False
    fetched_records: Callable[..., Any] = fetcher.fetched_records

    @functools.wraps(fetched_records)
    def fetched_records_repaired(*args: Any, **kwargs: Any) -> Any:
        try:
            return fetched_records(*args, **kwargs)
        except Exception as exc:
            # Only reading a batch raises while the in-line slot holds records; errors of
            # the fetch itself (offset out of range, authorization) come with it empty.
            part = fetcher._next_partition_records
            if not part:
                raise
            tp, offset = part.topic_partition, part.next_fetch_offset
            part.drain()
            fetcher._next_partition_records = None
            raise UnreadableRecord(tp.topic, tp.partition, offset, exc) from exc

    fetcher.fetched_records = fetched_records_repaired
    return True


def _repair_kept_positions(consumer: KafkaConsumer) -> bool:
    coordinator = getattr(consumer, "_coordinator", None)
    subscription = getattr(consumer, "_subscription", None)
    if (
        coordinator is None
        or subscription is None
        or not hasattr(coordinator, "_on_join_prepare_async")
        or not hasattr(coordinator, "_rebalance_protocol")
        or not hasattr(subscription, "assign_from_subscribed")
        or not hasattr(subscription, "partitions_auto_assigned")
    ):
        return False
    prepare: Callable[..., Any] = coordinator._on_join_prepare_async

    @functools.wraps(prepare)
    async def prepare_repaired(*args: Any, **kwargs: Any) -> Any:
        try:
            return await prepare(*args, **kwargs)
        finally:
            eager = coordinator._rebalance_protocol == RebalanceProtocol.EAGER
            if eager and subscription.partitions_auto_assigned():
                subscription.assign_from_subscribed([])

    coordinator._on_join_prepare_async = prepare_repaired
    return True
