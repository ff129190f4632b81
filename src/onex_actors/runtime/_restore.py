"""``StateRestorer``: each reducer partition restored from its changelog before it is served.

It follows the commit tracker (``PartitionFollower``): an assigned partition is
restored unless held already, a revoked one forgotten (its state moves on elsewhere), a
commit makes the writes below it committed, a read-again drops the pending writes. The
host awaits :meth:`ready` with each poll before dispatching it: a record of a reducer's
partition that is not restored waits until it is (the partition is not served before).
A bus that reports no assignments gets its partitions restored there. A partition
revoked and not assigned again is never restored (records of it still on their way are
void), and one revoked while its restore reads is not served: it is restored afresh
when it comes back, after whatever its other owner committed meanwhile.

A durable store (on disk) keeps a partition's states across a clean stop: the host saves
each served partition's changelog end as its checkpoint after its last commit
(:meth:`checkpoint`), and the next restore reads only the changelog after it (what other
hosts wrote meanwhile). A checkpoint the changelog no longer holds (recreated, or
truncated), or older than ``checkpoint_max_age_s`` (a deleted key's tombstone may be
compacted away after ``delete.retention.ms``, a day by default), is not used: the
partition is restored whole. The checkpoint is removed before the partition is served.

A restore the brokers do not answer (away for a while, or a read timing out) is tried
again, whole, after 0.5 s, then twice as long each time up to 10 s, for as long as the
partition stays assigned: the partition is not served meanwhile, and the host goes on.
After five minutes of failed tries the host stops with the error.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

import attrs
import trio

from onex_actors.core import BusError

from ._keyed import KeyedNode
from ._ports import ChangelogBus, Record, TopicPartition
from ._state_store import Checkpoint

__all__ = ["RestoreReport", "StateRestorer"]

logger = logging.getLogger("onex_actors.state")

RETRY_FIRST_S: Final = 0.5
"""How long a failed restore waits before it is tried again (doubled each time)."""
RETRY_LONGEST_S: Final = 10.0
"""The longest wait between two tries of a restore."""
GIVE_UP_S: Final = 300.0
"""How long a restore is tried before the host stops with its error (as Kafka Streams'
``task.timeout.ms``): a supervisor then starts it again, in case it is this host's."""


@attrs.frozen
class RestoreReport:
    """One partition's restore: what was read and how long it took."""

    node_id: str
    partition: int
    records: int
    keys: int
    seconds: float
    unreadable: int
    start: int = 0
    """The changelog offset read from: a checkpoint's, or 0 (restored whole)."""


class StateRestorer:
    """Restores the reducers' partitions from their changelogs; keeps their stores in step."""

    def __init__(
        self,
        bus: ChangelogBus,
        reducers: Mapping[str, KeyedNode],
        *,
        checkpoint_max_age_s: float = 12 * 3600,
        clock: Callable[[], float] = time.time,
        settled: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.bus = bus
        self.settled = settled
        """Awaited before a changelog is read: returns once no commit of this host is
        under way (``Delivery.settled``), so a restore sees what that commit wrote."""
        self.checkpoint_max_age_s = checkpoint_max_age_s
        self.clock = clock
        self.by_topic = {handler.cmd_topic: handler for handler in reducers.values()}
        """Each reducer by the command topic it reads."""
        self.restores: list[RestoreReport] = []
        """Every restore so far (``/metrics``, tests)."""
        self.restoring: set[TopicPartition] = set()
        """Partitions being restored now."""
        self.retries: Counter[str] = Counter()
        """Restores tried again after the brokers did not answer, per node."""
        self._lock = trio.Lock()
        self._assigned_send, self._assigned = trio.open_memory_channel[TopicPartition](math.inf)
        self._gone: set[TopicPartition] = set()
        """Partitions revoked and not assigned again since."""
        self._moves: Counter[TopicPartition] = Counter()
        """How often each partition was revoked (a restore checks none came meanwhile)."""
        self._stateless_said: set[str] = set()
        """Nodes whose command topic has partitions past their changelog's (said once)."""

    async def run(self) -> None:
        """Restore each partition as soon as it is assigned (until cancelled).

        Not only when its first record is read: a partition with nothing new to read
        still holds state, and timeouts due (``TimerScanner``) fire from restored state.
        """
        async for tp in self._assigned:
            handler = self.by_topic.get(tp.topic)
            if handler is not None and tp.partition not in handler.store.owned:
                await self.restore(handler, tp)

    async def ready(self, records: Sequence[Record]) -> None:
        """Restore every reducer partition ``records`` come from that is not restored yet.

        Not one revoked from this member: its records were fetched before it went and
        are void here (the reducer answers nothing for a partition it does not hold).
        """
        by_topic = self.by_topic
        if not by_topic:
            return
        # (topic, partition) pairs, not a TopicPartition per record: this runs for every slice
        for topic, partition in {(r.topic, r.partition) for r in records}:
            handler = by_topic.get(topic)
            if handler is None or partition in handler.store.owned:
                continue
            tp = TopicPartition(topic, partition)
            if tp not in self._gone:
                await self.restore(handler, tp)

    async def restore(self, handler: KeyedNode, tp: TopicPartition) -> None:
        """Restore ``tp`` of ``handler``'s input from its changelog, unless it is already.

        A partition past the changelog's (the command topic grew while the host ran, or
        before: see ``prepare_changelogs``) holds no state: it is served at once, and its
        records are sent on to their keys' partitions.
        """
        async with self._lock:
            store = handler.store
            if tp.partition in store.owned or tp in self._gone:
                return
            if tp.partition >= handler.partitions:
                self._serve_stateless(handler, tp)
                return
            moves = self._moves[tp]
            self.restoring.add(tp)
            started = time.perf_counter()
            try:
                outcome = await self._read_retrying(handler, tp, moves)
                if outcome is not None:
                    handler.restored(tp.partition)
            finally:
                self.restoring.discard(tp)
            if outcome is None or self._moves[tp] != moves:
                self._forget([tp])
                logger.info(
                    "%s partition %d was revoked while it was restored: not served here",
                    handler.node_id,
                    tp.partition,
                )
                return
            start, read, unreadable = outcome
            store.owned.add(tp.partition)
            report = RestoreReport(
                handler.node_id,
                tp.partition,
                read,
                store.keys_in(tp.partition),
                time.perf_counter() - started,
                unreadable,
                start,
            )
            self.restores.append(report)
            logger.info(
                "%s partition %d restored: %d keys from %d changelog records%s in %.2f s%s",
                report.node_id,
                report.partition,
                report.keys,
                report.records,
                f" after its checkpoint (offset {start})" if start else "",
                report.seconds,
                f" ({unreadable} unreadable records skipped)" if unreadable else "",
            )

    def _serve_stateless(self, handler: KeyedNode, tp: TopicPartition) -> None:
        """Serve ``tp``, which has no changelog partition: its commands only pass through."""
        handler.store.owned.add(tp.partition)
        if handler.node_id in self._stateless_said:
            return
        self._stateless_said.add(handler.node_id)
        logger.warning(
            "%s: partition %d of %s has no partition in its state topic %s, which has %d "
            "(the command topic grew): its commands are sent on to their keys' partitions "
            "among the first %d, one hop more, and each key's state keeps folding them. "
            "Said once a node",
            handler.node_id,
            tp.partition,
            tp.topic,
            handler.state_topic,
            handler.partitions,
            handler.partitions,
        )

    async def _read_retrying(
        self, handler: KeyedNode, tp: TopicPartition, moves: int
    ) -> tuple[int, int, int] | None:
        """Read ``tp``'s changelog (``_read``), trying again while the brokers do not answer.

        ``None`` once ``tp`` is revoked (it is not served here); ``BusError`` after
        ``GIVE_UP_S`` of failed tries.
        """
        wait = RETRY_FIRST_S
        give_up_at: float | None = None
        while True:
            try:
                return await self._read(handler, tp.partition)
            except BusError as exc:
                if self._moves[tp] != moves:
                    return None
                now = trio.current_time()
                if give_up_at is None:
                    give_up_at = now + GIVE_UP_S
                if now + wait > give_up_at:
                    raise BusError(
                        f"{handler.node_id} partition {tp.partition}: not restored after "
                        f"{GIVE_UP_S:g} s of tries: {exc}. Can the host reach the brokers, "
                        f"and read {handler.state_topic}?",
                        reason=exc.reason,
                    ) from None
                self.retries[handler.node_id] += 1
                logger.warning(
                    "%s partition %d: its restore failed (%s); trying it again in %.1f s, "
                    "the partition not served until then",
                    handler.node_id,
                    tp.partition,
                    exc,
                    wait,
                )
            await trio.sleep(wait)
            wait = min(wait * 2, RETRY_LONGEST_S)
            if self._moves[tp] != moves:
                return None

    async def _read(self, handler: KeyedNode, partition: int) -> tuple[int, int, int]:
        """Read ``partition``'s changelog into its store.

        Return where it read from, how many records, and how many were unreadable.
        ``BusError`` if the brokers do not answer: what was read is dropped at the next try
        (the checkpoint is forgotten by then, so it reads the partition whole).
        """
        store = handler.store
        unreadable = 0

        def apply(records: Sequence[Record]) -> None:
            nonlocal unreadable
            unreadable += store.load(partition, records)

        if self.settled is not None:
            await self.settled()
        start = await self._resume_point(handler, partition)
        if start:
            store.release(partition)
        else:
            store.drop(partition)
        store.states.forget_checkpoint(partition)
        read = await self.bus.read_changelog(handler.state_topic, partition, apply, start=start)
        if start:
            store.index_all(partition)
        return start, read, unreadable

    async def _resume_point(self, handler: KeyedNode, partition: int) -> int:
        """Return the changelog offset to restore ``partition`` from (0: whole)."""
        checkpoint = handler.store.states.checkpoint(partition)
        if checkpoint is None:
            return 0
        where = f"{handler.node_id} partition {partition}"
        age = self.clock() - checkpoint.saved_at
        if age > self.checkpoint_max_age_s:
            logger.info(
                "%s: its checkpoint is %.0f s old (over %.0f s): restored whole",
                where,
                age,
                self.checkpoint_max_age_s,
            )
            return 0
        first, end = await self.bus.changelog_bounds(handler.state_topic, partition)
        if not first <= checkpoint.offset <= end:
            logger.warning(
                "%s: its checkpoint (offset %d) is not in %s (offsets %d to %d: recreated or "
                "truncated?): restored whole",
                where,
                checkpoint.offset,
                handler.state_topic,
                first,
                end,
            )
            return 0
        return checkpoint.offset

    async def checkpoint(self) -> int:
        """Save each durable partition's changelog end as its checkpoint; return how many.

        Call after the host's last commit when it stops cleanly: a partition with writes
        not committed gets none (it is restored whole next time).
        """
        saved = 0
        for handler in self.by_topic.values():
            store = handler.store
            if not store.states.durable:
                continue
            for partition in sorted(p for p in store.owned if p < handler.partitions):
                if store.pending(partition):
                    logger.info(
                        "%s partition %d: writes not committed at stop; no checkpoint",
                        handler.node_id,
                        partition,
                    )
                    continue
                _, end = await self.bus.changelog_bounds(handler.state_topic, partition)
                store.states.save_checkpoint(partition, Checkpoint(end, self.clock()))
                saved += 1
        return saved

    # -- PartitionFollower ------------------------------------------------------------

    def assigned(self, partitions: Sequence[TopicPartition]) -> None:
        """Restore ``partitions`` that are not held here yet.

        One this member kept through the rebalance (never revoked) keeps its state,
        pending writes included: they belong to records whose offsets are still to be
        committed here. Dropping it would leave those records decided as "not here" and
        their offsets committed with nothing written (a key's commands lost).
        """
        for tp in partitions:
            if tp.topic in self.by_topic:
                self._gone.discard(tp)
                self._assigned_send.send_nowait(tp)

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Forget ``partitions``: another member owns them now."""
        for tp in partitions:
            if tp.topic in self.by_topic:
                self._gone.add(tp)
                self._moves[tp] += 1
        self._forget(partitions)

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Make the writes below each committed offset committed."""
        for tp, offset in offsets.items():
            handler = self.by_topic.get(tp.topic)
            if handler is not None:
                handler.store.committed(tp.partition, offset)

    def read_again(self, partitions: Sequence[TopicPartition] | None) -> None:
        """Drop the pending writes of ``partitions`` (``None``: of every partition)."""
        for handler in self.by_topic.values():
            owned = sorted(handler.store.owned)
            for partition in owned:
                tp = TopicPartition(handler.cmd_topic, partition)
                if partitions is None or tp in partitions:
                    handler.store.discard(partition)

    def _forget(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop serving ``partitions``; a durable store keeps their states (a checkpoint's)."""
        for tp in partitions:
            handler = self.by_topic.get(tp.topic)
            if handler is None:
                continue
            if handler.store.states.durable:
                handler.store.release(tp.partition)
            else:
                handler.store.drop(tp.partition)
