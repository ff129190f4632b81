"""``Inbox``: a node's queue of envelopes, bounded by pausing what feeds it.

The dispatcher never waits on a node: it puts a poll's slice in the node's inbox and
moves on. Once ``capacity`` envelopes wait, the partitions feeding the inbox are
paused while the consumer keeps polling (so the group does not rebalance); they resume
once the workers have taken the backlog down to half. Nothing is ever dropped: at most
the rest of the polls already read arrive past ``capacity``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

import trio

from ._ports import TopicPartition

if TYPE_CHECKING:
    from ._item import WorkItem
    from ._outbox import RuntimeLog

__all__ = ["FlowControl", "Inbox"]


class FlowControl(Protocol):
    """Pauses and resumes partitions (a ``BusConsumer`` is one)."""

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop reading ``partitions``."""
        ...

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        """Read ``partitions`` again."""
        ...


class Inbox:
    """Envelopes waiting for one node's workers, in the order they were read."""

    def __init__(self, node_id: str, capacity: int) -> None:
        self.node_id = node_id
        self.capacity = capacity
        self.low = capacity // 2
        self.items: deque[WorkItem] = deque()
        self.partitions: set[TopicPartition] = set()
        """Partitions that have fed this inbox: the ones paused when it is full."""
        self.paused = False
        self.pauses = 0
        self.received = 0
        """Envelopes ever queued here from the bus (hand-backs after a crash not counted)."""
        self.closed = False
        self._flow: FlowControl | None = None
        self._log: RuntimeLog | None = None
        self._waiting = trio.lowlevel.ParkingLot()
        """Idle workers: each arrival wakes as many as there are new items, not all."""
        self._resumed = False

    def __len__(self) -> int:
        return len(self.items)

    def attach(self, flow: FlowControl, log: RuntimeLog) -> None:
        """Pause and resume through ``flow``, logging each change to ``log``."""
        self._flow, self._log = flow, log

    async def put(self, items: Sequence[WorkItem], partitions: Iterable[TopicPartition]) -> None:
        """Queue ``items`` (read from ``partitions``); pause those once the inbox is full."""
        if self.closed:
            raise trio.ClosedResourceError(f"the inbox of node {self.node_id!r} is closed")
        self.items.extend(items)
        self.received += len(items)
        new = [tp for tp in partitions if tp not in self.partitions]
        if new:
            self.partitions.update(new)
            if self.paused and self._flow is not None:
                self._flow.pause(new)
        self._waiting.unpark(count=len(items))
        if len(self.items) >= self.capacity and not self.paused and self._flow is not None:
            self.paused = True
            self.pauses += 1
            self._flow.pause(sorted(self.partitions))
            await self._report("partitions_paused")

    def put_nowait(self, item: WorkItem) -> None:
        """Queue one item without pausing anything (for envelopes handed back)."""
        if self.closed:
            raise trio.ClosedResourceError(f"the inbox of node {self.node_id!r} is closed")
        self.items.append(item)
        self._waiting.unpark()

    async def take(self, limit: int) -> list[WorkItem]:
        """Wait for items and return up to ``limit`` of them, oldest first.

        Raises ``trio.EndOfChannel`` once the inbox is closed and empty. Nothing is
        awaited after the items leave the inbox, so a cancelled worker loses none; call
        :meth:`report` once they are held.
        """
        while not self.items:
            if self.closed:
                raise trio.EndOfChannel
            await self._waiting.park()
        items = self.items
        if limit == 1 or len(items) == 1:
            taken = [items.popleft()]
        else:
            taken = [items.popleft() for _ in range(min(limit, len(items)))]
        if self.paused and len(items) <= self.low:
            self.paused = False
            self._resumed = True
            if self._flow is not None:
                self._flow.resume(sorted(self.partitions))
        return taken

    async def report(self) -> None:
        """Log a resume that :meth:`take` did, if it did one."""
        if self._resumed:
            self._resumed = False
            await self._report("partitions_resumed")

    def close(self) -> None:
        """Take no more items; workers finish what is queued, then see the end."""
        self.closed = True
        self._waiting.unpark_all()

    async def _report(self, event: str) -> None:
        if self._log is None:
            return
        await self._log.event(
            event,
            {
                "node_id": self.node_id,
                "backlog": len(self.items),
                "partitions": [f"{tp.topic}:{tp.partition}" for tp in sorted(self.partitions)],
            },
            level=logging.INFO,
        )
