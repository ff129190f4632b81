"""``NodeFeeder``: the queue between the dispatcher and one node's inbox.

The dispatcher never waits on a node: it hands records to the node's feeder and moves
on. When a feeder backs up (its node's inbox is full and ``high`` items wait), the
partitions feeding it are paused, while the consumer keeps polling, so the group does
not rebalance; they resume once the backlog is down to ``low``.
"""

from __future__ import annotations

import logging
from collections import deque

import trio

from onex_actors.runtime import BusConsumer, NodeRuntime, RuntimeLog, TopicPartition, WorkItem

__all__ = ["NodeFeeder"]


class NodeFeeder:
    """Feeds one node's inbox, pausing and resuming the partitions behind it."""

    def __init__(
        self,
        node_id: str,
        runtime: NodeRuntime,
        consumer: BusConsumer,
        log: RuntimeLog,
        *,
        high: int,
        low: int,
    ) -> None:
        self.node_id = node_id
        self.runtime = runtime
        self.consumer = consumer
        self.log = log
        self.high = high
        self.low = low
        self.pending: deque[WorkItem] = deque()
        self.partitions: set[TopicPartition] = set()
        self.paused = False
        self.pauses = 0
        self._arrived = trio.Event()

    async def put(self, item: WorkItem, partition: TopicPartition) -> None:
        """Queue ``item``; pause the node's partitions if the backlog reached ``high``."""
        self.pending.append(item)
        if partition not in self.partitions:
            self.partitions.add(partition)
            if self.paused:
                self.consumer.pause([partition])
        self._arrived.set()
        if len(self.pending) >= self.high and not self.paused:
            self.paused = True
            self.pauses += 1
            self.consumer.pause(sorted(self.partitions))
            await self._log("partitions_paused")

    async def run(self) -> None:
        """Move queued items into the inbox, in order, waiting while it is full."""
        while True:
            while not self.pending:
                self._arrived = trio.Event()
                await self._arrived.wait()
            if not self.runtime.try_deliver(self.node_id, self.pending[0]):
                await self.runtime.deliver(self.node_id, self.pending[0])
            self.pending.popleft()
            if self.paused and len(self.pending) <= self.low:
                self.paused = False
                self.consumer.resume(sorted(self.partitions))
                await self._log("partitions_resumed")

    async def _log(self, event: str) -> None:
        await self.log.event(
            event,
            {
                "node_id": self.node_id,
                "backlog": len(self.pending),
                "partitions": [f"{tp.topic}:{tp.partition}" for tp in sorted(self.partitions)],
            },
            level=logging.INFO,
        )
