"""Delivery strategies: when offsets are committed, and what rides with them.

A host runs one of two, chosen once where it is wired:

- ``AtLeastOnce``: every ``commit_interval_s`` the offsets whose records are all done
  (their results acknowledged by the broker) are committed through the consumer; a
  crash or a rebalance hands on what was past the last commit, which is answered again.
- ``ExactlyOnce``: the outbox holds every output; each round (every
  ``transaction_interval_s``, or sooner at ``max_transaction_records`` or as soon as
  every record read is answered) commits, in one
  Kafka transaction, the offsets of the done prefix with exactly the held outputs of the
  records in it. A revocation or an abort voids what is in flight: every partition is
  read again from its last commit, and what was voided is never committed.

Nothing outside this module and the wiring asks which one runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Protocol

import attrs
import trio

from onex_actors.core import BusError, ConfigError, TransactionAborted

from ._commits import CommitTracker, OffsetMarks
from ._outbox import Outbox
from ._ports import (
    Bus,
    BusConsumer,
    Record,
    RewindableConsumer,
    TransactionalBus,
)
from ._tracing import Tracer

__all__ = ["Admitted", "AtLeastOnce", "Delivery", "ExactlyOnce"]

logger = logging.getLogger("onex_actors.host")


@attrs.frozen
class Admitted:
    """The records of one poll to hand to the nodes, and the marks that settle them."""

    records: Sequence[Record]
    marks: OffsetMarks


class Delivery(Protocol):
    """How a host commits: the loop beside the consumer, the last commit, what it reads."""

    commits: CommitTracker
    ticket_per_partition: bool
    """Whether each partition of a slice gets a ticket of its own (the dispatcher's)."""
    aborted: int
    """Transactions the brokers aborted (their inputs were read again)."""

    def check(self, bus: Bus) -> None:
        """Raise ``ConfigError`` when ``bus`` cannot deliver this way."""

    async def run(self, consumer: BusConsumer) -> None:
        """Commit as due until cancelled (beside the consumer's poll loop)."""

    async def commit(self, consumer: BusConsumer) -> None:
        """Commit what is done now (the last commit of a stop, or a round)."""

    async def settled(self) -> None:
        """Return once no commit of this host is under way (a restore reads after it)."""

    def admit(self, records: Sequence[Record]) -> Admitted:
        """Return the polled ``records`` to hand to the nodes, tracked (with their marks).

        Call it with no await since the poll returned them: a read voided later (a
        revocation, an aborted transaction) then retires their marks. Tracked after
        such a void, they would open a fresh read at their own offsets, past the voided
        records before them, and its commit would skip those.
        """


@attrs.define
class AtLeastOnce:
    """Offsets of done records committed every ``interval_s``; outputs published at once."""

    commits: CommitTracker
    interval_s: float
    ticket_per_partition: bool = attrs.field(default=False, init=False)
    aborted: int = attrs.field(default=0, init=False)
    """Always 0: no transactions."""

    def check(self, bus: Bus) -> None:
        """Any bus delivers at least once."""

    async def run(self, consumer: BusConsumer) -> None:
        """Commit what is done every interval, until cancelled."""
        while True:
            await trio.sleep(self.interval_s)
            await self.commit(consumer)

    async def commit(self, consumer: BusConsumer) -> None:
        """Commit the done offsets; a refused commit is tried again at the next one."""
        await self.commits.commit(consumer)

    async def settled(self) -> None:
        """At once: what a restore reads (acknowledged writes) does not wait on commits."""
        await trio.lowlevel.checkpoint()

    def admit(self, records: Sequence[Record]) -> Admitted:
        """Every record: a redelivery is answered from the idempotency window."""
        return Admitted(records, self.commits.track(records))


@attrs.define
class ExactlyOnce:
    """Outputs and the offsets of their inputs committed together in Kafka transactions."""

    bus: Bus
    commits: CommitTracker
    outbox: Outbox
    runtime_id: str
    interval_s: float
    max_records: int
    ticket_per_partition: bool = attrs.field(default=True, init=False)
    aborted: int = attrs.field(default=0, init=False)
    """Transactions the brokers aborted (their inputs were read again)."""
    tracer: Tracer | None = attrs.field(default=None, kw_only=True)
    """Records each aborted transaction as a span (``None``: tracing is off)."""
    _lock: trio.Lock = attrs.field(factory=trio.Lock, init=False)
    _revocations_handled: int = attrs.field(default=0, init=False)
    """Revocations (as the consumer's client counts them) read again after."""
    _rewind_due: bool = attrs.field(default=False, init=False)
    """A read-again whose seek did not happen yet (the consumer did not answer): no
    round commits anything until it has."""
    unanswered: int = attrs.field(default=0, init=False)
    """Rounds skipped because the consumer did not answer (cut off from the brokers)."""
    _unanswered_run: int = attrs.field(default=0, init=False)

    def check(self, bus: Bus) -> None:
        """Refuse a bus without transactions."""
        if not (isinstance(bus, TransactionalBus) and bus.transactional):
            raise ConfigError(
                "delivery.mode is exactly_once but the bus has no transactions: use "
                "bus.kind: kafka (either Kafka client), or delivery.mode: at_least_once"
            )

    async def run(self, consumer: BusConsumer) -> None:
        """Commit a transaction every interval (or at ``max_records``), until cancelled.

        Beside it, every revocation makes the host read its partitions again.
        """
        rewindable = _rewindable(consumer, self.runtime_id)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_again_after_revocations, rewindable)
            while True:  # every interval, or sooner when nothing more is coming
                deadline = trio.current_time() + self.interval_s
                with trio.move_on_at(deadline):
                    await self._worth_committing()
                held = self.outbox.held
                await self.commit(consumer)
                if self.outbox.held >= self.max_records or self.outbox.held == held:
                    await trio.sleep_until(deadline)  # held behind a gap: no hurry

    async def _worth_committing(self) -> None:
        """Wait until a round is worth more than waiting for the interval.

        That is when ``max_records`` outputs are held, or when outputs are held and no
        record is in flight: everything read is answered, so waiting would only delay
        their results (a lone command's answer is then visible in one round trip).
        """
        while True:
            held = self.outbox.held
            if held >= self.max_records or (held and self.commits.idle()):
                return
            if held:  # each output held settles its record: idle, or more held, comes then
                await self.commits.wait_done()
            else:
                await self.outbox.wait_held(1)

    async def commit(self, consumer: BusConsumer) -> None:
        """Commit what is done with its outputs in one transaction."""
        async with self._lock:
            try:
                await self._commit_transaction(_rewindable(consumer, self.runtime_id))
            finally:
                self.commits.end_round()

    async def settled(self) -> None:
        """Return once no transaction of this host is under way.

        A partition taken away while a round commits it (the old generation is still
        accepted while the group prepares its rebalance) and given back at once must be
        restored after that round ends: read before, its changelog stops at the open
        transaction's writes, and the offsets that transaction commits would then skip
        their records' folds.
        """
        async with self._lock:
            await trio.lowlevel.checkpoint()

    def admit(self, records: Sequence[Record]) -> Admitted:
        """Return the records past the committed offsets (and a commit's under way).

        A client that reset its position from an offset fetch older than this host's
        last transaction reads committed records again: their results are visible
        already, so they are never handled (or answered) twice.
        """
        kept = self.commits.uncommitted(records)
        return Admitted(kept, self.commits.track(kept))

    async def _commit_transaction(self, consumer: RewindableConsumer) -> None:
        """Commit what is done with its outputs in one transaction, then open the next.

        The transaction carries exactly the held outputs whose input records lie in the
        done prefix that its offsets commit (and runtime log events). An aborted one is
        read again from the last committed offsets.
        """
        bus = self.bus
        assert isinstance(bus, TransactionalBus)
        if self._rewind_due and not await self._rewound(consumer):
            return
        # the metadata first: a transaction of a generation that lost partitions since
        # is fenced; one of a newer generation comes with a revocation handled here
        try:
            state = await consumer.transaction_state()
        except BusError as exc:  # e.g. cut off: its thread waits on the brokers
            self._skipped(exc)
            return
        self._unanswered_run = 0
        if state.revocations > self._revocations_handled:
            self._revocations_handled = state.revocations
            await self._read_again(consumer)
            return
        metadata = state.group_metadata
        if metadata is None:  # between generations: the next round commits
            await trio.lowlevel.checkpoint()
            return
        # records fetched during a rebalance of partitions that then moved: void
        self.commits.retire_except(state.owned)
        due = self.commits.due()
        released = self.outbox.release()
        if not due and not released:
            await trio.lowlevel.checkpoint()
            return
        await self.outbox.send_released(released)
        self.commits.committing = {
            tp: max(offset, self.commits.committed_offsets().get(tp, 0))
            for tp, offset in due.items()
        }
        try:
            await bus.commit_transaction(due, metadata)
        except TransactionAborted as exc:
            self.commits.committing = {}
            self.aborted += 1
            logger.warning("%s (pid %d): %s", self.runtime_id, os.getpid(), exc)
            if self.tracer is not None:
                self.tracer.transaction_aborted(str(exc), len(released))
            await self._read_again(consumer)
            return
        self.commits.committed(due)
        self.commits.committing = {}
        self.commits.commits += 1

    async def _read_again(self, consumer: RewindableConsumer) -> None:
        """Void what is in flight and read every partition again from its last commit.

        A seek the consumer does not answer (cut off from the brokers) is tried again
        before the next round commits anything; meanwhile nothing it fetches is handed on.
        """
        self.commits.retire_all()
        self.outbox.drop_void()
        self._rewind_due = True
        await self._rewound(consumer)

    async def _rewound(self, consumer: RewindableConsumer) -> bool:
        """Seek to the last commit; return whether the consumer did."""
        try:
            await consumer.rewind()
        except BusError as exc:
            self._skipped(exc)
            return False
        self._rewind_due = False
        return True

    def _skipped(self, error: BusError) -> None:
        """Count a round the consumer did not answer; say so on the first of a run."""
        self.unanswered += 1
        self._unanswered_run += 1
        if self._unanswered_run == 1 or self._unanswered_run % 60 == 0:
            logger.warning(
                "%s (pid %d): no transaction this round, the consumer did not answer (%s); "
                "nothing is committed until it does (%d rounds so far)",
                self.runtime_id,
                os.getpid(),
                error,
                self._unanswered_run,
            )

    async def _read_again_after_revocations(self, consumer: RewindableConsumer) -> None:
        """After a rebalance took partitions away, read again from the last commit.

        The records in flight may now belong to another member, which reads them from
        the last commit too: their outputs must never be committed here. Batches this
        member fetched before the rebalance are dropped with them.
        """
        seen = 0
        while True:
            seen = await consumer.wait_revocation(seen)
            async with self._lock:
                try:
                    state = await consumer.transaction_state()
                except BusError as exc:
                    self._skipped(exc)
                    continue  # the next round asks again
                if state.revocations > self._revocations_handled:
                    self._revocations_handled = state.revocations
                    await self._read_again(consumer)


def _rewindable(consumer: BusConsumer, runtime_id: str) -> RewindableConsumer:
    if not isinstance(consumer, RewindableConsumer):
        raise BusError(
            f"runtime {runtime_id!r}: delivery.mode exactly_once needs a consumer that can "
            "read its partitions again (both Kafka clients' do)"
        )
    return consumer
