"""``Inbox``: a node's queue of envelopes, bounded by pausing what feeds it.

Workers take envelopes in the order the node's ``ordering`` allows (a ``KeyOrder``):
under ``key`` no two envelopes of one record key are out at once, under ``partition``
no two of one partition; a taken envelope holds its key until :meth:`Inbox.release`.
The dispatcher never waits on a node: it puts a poll's slice in the node's inbox and
moves on. Once ``capacity`` envelopes wait, the partitions feeding the inbox are
paused while the consumer keeps polling (so the group does not rebalance); they resume
once the workers have taken the backlog down to half. Nothing is ever dropped: at most
the rest of the polls already read arrive past ``capacity``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

import trio

from onex_actors.core import KeyOrder, record_key

from ._ports import TopicPartition

if TYPE_CHECKING:
    from ._item import WorkItem
    from ._outbox import RuntimeLog

__all__ = ["FlowControl", "Inbox", "Ordering"]

Ordering = Literal["key", "partition", "none"]
"""A node contract's ``ordering``."""


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

    def __init__(self, node_id: str, capacity: int, ordering: Ordering = "key") -> None:
        self.node_id = node_id
        self.capacity = capacity
        self.low = capacity // 2
        self.items: KeyOrder[WorkItem] = KeyOrder()
        self._key_of: Callable[[WorkItem], Hashable] = _KEYS[ordering]
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
        queue, key_of = self.items, self._key_of
        ready = queue.ready
        for item in items:
            queue.push(item, key_of(item))
        self.received += len(items)
        new = [tp for tp in partitions if tp not in self.partitions]
        if new:
            self.partitions.update(new)
            if self.paused and self._flow is not None:
                self._flow.pause(new)
        self._waiting.unpark(count=queue.ready - ready)
        if len(queue) >= self.capacity and not self.paused and self._flow is not None:
            self.paused = True
            self.pauses += 1
            self._flow.pause(sorted(self.partitions))
            await self._report("partitions_paused")

    async def take(self, limit: int) -> list[WorkItem]:
        """Wait for items the ordering lets out and return up to ``limit`` of them.

        Each holds its key until :meth:`release`. Raises ``trio.EndOfChannel`` once the
        inbox is closed and empty. Nothing is awaited after the items leave the inbox, so
        a cancelled worker loses none; call :meth:`report` once they are held.
        """
        items = self.items
        while not items.ready:
            if self.closed and not len(items):
                raise trio.EndOfChannel
            await self._waiting.park()
        taken = []
        for _ in range(min(limit, items.ready)):
            item, key = items.pop()
            item.order_key = key
            taken.append(item)
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

    def release(self, items: Iterable[WorkItem]) -> None:
        """Say ``items`` are handled: the next envelope of each one's key may be taken."""
        queue = self.items
        ready = queue.ready
        for item in items:
            key, item.order_key = item.order_key, None
            queue.release(key)
        if queue.ready > ready:
            self._waiting.unpark(count=queue.ready - ready)
        elif self.closed and not len(queue):
            # workers parked behind a key held until now would wait forever: the end
            self._waiting.unpark_all()

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


def _record_key(item: WorkItem) -> Hashable:
    record = item.record
    if record is None:
        return record_key(item.envelope)
    return None if record.key is None else (record.topic, record.key)


def _partition(item: WorkItem) -> Hashable:
    record = item.record
    return None if record is None else (record.topic, record.partition)


def _unordered(item: WorkItem) -> Hashable:
    return None


_KEYS: dict[Ordering, Callable[[WorkItem], Hashable]] = {
    "key": _record_key,
    "partition": _partition,
    "none": _unordered,
}
