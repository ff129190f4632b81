"""``GroupMember``: what a Kafka consumer-group member owns, as its trio side sees it.

Both Kafka bridges keep it the same way: the consumer thread reports rebalances and
the high watermarks its fetches carried; trio reads them without a call to the client.
"""

from __future__ import annotations

from collections.abc import Iterable

import trio

from onex_actors.runtime import PartitionEvents, TopicPartition

__all__ = ["GroupMember"]


class GroupMember:
    """The assignment of one member, its changes, and the log ends its fetches saw."""

    def __init__(self, events: PartitionEvents | None = None) -> None:
        self.events = events
        """Told of every assignment and revocation (the runtime's partition units)."""
        self.assignment: set[TopicPartition] = set()
        self.assignment_changed = trio.Event()
        """Set when the assignment changes (then replaced by a fresh event)."""
        self.revocations = 0
        """How many rebalances took partitions away from this member."""
        self._ends: dict[TopicPartition, int] = {}
        """Log end offsets as of each partition's last fetch (written by the thread)."""

    def end_offsets(self) -> dict[TopicPartition, int]:
        """Return the log end offsets of the owned partitions, as of their last fetch."""
        ends = dict(self._ends)
        return {tp: end for tp, end in ends.items() if tp in self.assignment}

    async def wait_assigned(self) -> None:
        """Return once the group has assigned this member partitions."""
        while not self.assignment:
            await self.assignment_changed.wait()

    async def wait_revocation(self, seen: int) -> int:
        """Wait until partitions were taken away more than ``seen`` times; return the count."""
        while self.revocations <= seen:
            await self.assignment_changed.wait()
        return self.revocations

    def _change_assignment(
        self, assigned: Iterable[TopicPartition], revoked: Iterable[TopicPartition]
    ) -> None:
        """Apply a rebalance (trio thread) and wake whoever waits for one."""
        assigned, revoked = list(assigned), list(revoked)
        if revoked:
            self.revocations += 1
        self.assignment.difference_update(revoked)
        self.assignment.update(assigned)
        if self.events is not None:
            if revoked:
                self.events.revoked(revoked)
            if assigned:
                self.events.assigned(assigned)
        self.assignment_changed.set()
        self.assignment_changed = trio.Event()
