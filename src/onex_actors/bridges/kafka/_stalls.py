"""Watching a consumer's progress: records waiting and nothing read means it is stuck."""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.errors import KafkaError

from onex_actors.core import BusError, ProgressWatch

__all__ = ["StallWatch"]

logger = logging.getLogger("onex_actors.kafka")


class StallWatch:
    """Checks, every quarter of ``stall_timeout_s``, that no partition is stuck.

    Called from the consumer thread after each poll (so nothing fetched is held back
    by it); the verdict itself is the pure ``core.ProgressWatch``.
    """

    def __init__(self, group_id: str, stall_timeout_s: float) -> None:
        self.group_id = group_id
        self.stall_timeout_s = stall_timeout_s
        self._progress: ProgressWatch[KafkaTopicPartition] = ProgressWatch(stall_timeout_s)
        self._next_check = 0.0

    def check(self, consumer: KafkaConsumer) -> None:
        """Raise ``BusError`` if an assigned, unpaused partition has lag and no progress."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + max(0.5, self.stall_timeout_s / 4)
        assigned = set(consumer.assignment())
        self._progress.forget(assigned)
        if not assigned:
            return
        try:
            ends = consumer.end_offsets(list(assigned), timeout_ms=5_000)
        except KafkaError as exc:  # the broker is away: no verdict this time
            logger.info("group %s: end offsets unknown (%s)", self.group_id, exc)
            return
        paused = set(consumer.paused())
        for tp in assigned:
            try:
                position = consumer.position(tp, timeout_ms=0)
            except KafkaError:  # not known yet (being reset): no verdict this time
                continue
            if position is not None and tp in ends:
                self._progress.observe(tp, position, ends[tp], paused=tp in paused, now=now)
        stalls = self._progress.stalled(now)
        if stalls:
            described = "; ".join(
                f"{s.partition.topic} partition {s.partition.partition}: "
                f"{s.end - s.position} records waiting from offset {s.position}"
                for s in stalls
            )
            raise BusError(
                f"Kafka consumer of group {self.group_id!r} is stuck: nothing read for "
                f"{self.stall_timeout_s:g} s while records wait ({described}). Stopping "
                "rather than stalling silently; a restart resumes from the last commit",
                reason="consumer_stalled",
            )
