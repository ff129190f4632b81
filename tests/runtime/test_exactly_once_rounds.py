"""The exactly-once strategy's rounds against a model of the log, in any interleaving.

``ExactlyOnce`` runs with a fake transactional bus and consumer that keep a model of
two partitions: what was fetched, in which read (a rewind starts a new one), what each
transaction carried and which offsets it committed. Hypothesis draws interleavings of
fetches, records finishing in any order, transaction rounds, aborted transactions and
revocations (here the member gets its partitions back, so reading again must lose and
double nothing; partitions handed to another member are the fault harness's scenarios);
a fetched batch may also be held before it reaches the nodes (the host awaits a
partition's restore there) while any of that happens. Then everything is finished and
committed. Checked against the model:

- an output is committed only with its input's offset (in the same transaction);
- an offset is committed only once every record below it has its output committed;
- no output of a read that a rewind voided is ever committed;
- each record's output is committed exactly once, and in the end every fetched
  record's is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import attrs
import trio
from hypothesis import example, given, settings
from hypothesis import strategies as st
from trio.testing import wait_all_tasks_blocked

from onex_actors.core import TopicPattern, TransactionAborted
from onex_actors.runtime import (
    Admitted,
    BatchAck,
    CommitTracker,
    ExactlyOnce,
    OutboundRecord,
    Outbox,
    Record,
    Ticket,
    TopicPartition,
    TransactionState,
)

TOPIC = "cmd"
PARTITIONS = (0, 1)
LOG_LENGTH = 8


@attrs.define
class Transaction:
    """What one committed transaction carried."""

    outputs: list[tuple[int, int, int]]
    """(partition, offset, read) of each output."""
    offsets: dict[int, int]
    read: int
    """The read of the log under way when it committed."""


@attrs.define
class ModelLog:
    """A fake transactional bus and consumer over two partitions of ``LOG_LENGTH`` records."""

    position: dict[int, int] = attrs.field(factory=lambda: dict.fromkeys(PARTITIONS, 0))
    committed: dict[int, int] = attrs.field(factory=lambda: dict.fromkeys(PARTITIONS, 0))
    read: int = 0
    """Which read of the log this is: a rewind starts the next."""
    revocations: int = 0
    abort_next: bool = False
    open_outputs: list[tuple[int, int, int]] = attrs.field(factory=list)
    transactions: list[Transaction] = attrs.field(factory=list)
    rewinds: int = 0
    transacted: trio.Event = attrs.field(factory=trio.Event)
    """Set once a transaction has committed."""
    committing: trio.Event = attrs.field(factory=trio.Event)
    """Set once a transaction's commit has been asked for."""
    brokers_answer: trio.Event | None = None
    """When given, a commit waits for it (the brokers are slow to answer)."""

    # -- the bus --
    transactional: bool = True

    def consumer(self, patterns: Sequence[TopicPattern], group_id: str, **_: Any) -> Any:
        raise NotImplementedError

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        raise NotImplementedError

    def record_limit(self, topic: str) -> int | None:
        return None

    def unreachable(self) -> str | None:
        return None

    async def publish(
        self, records: Sequence[OutboundRecord], on_ack: BatchAck | None = None
    ) -> None:
        for record in records:
            partition, offset, read = map(int, record.value.split(b":"))
            self.open_outputs.append((partition, offset, read))
        if on_ack is not None:
            on_ack([])

    async def commit_transaction(
        self, offsets: Mapping[TopicPartition, int], group_metadata: object
    ) -> None:
        self.committing.set()
        if self.brokers_answer is not None:
            await self.brokers_answer.wait()
        carried, self.open_outputs = self.open_outputs, []
        if self.abort_next:
            self.abort_next = False
            raise TransactionAborted("the model aborted it")
        committed = {tp.partition: offset for tp, offset in offsets.items()}
        self.transactions.append(Transaction(carried, committed, self.read))
        self.committed.update(committed)
        self.transacted.set()

    # -- the consumer --
    async def poll(self, max_records: int) -> Sequence[Record]:
        raise NotImplementedError

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        raise AssertionError("an exactly-once host never commits offsets outside a transaction")

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        raise NotImplementedError

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        raise NotImplementedError

    async def wait_assigned(self) -> None:
        raise NotImplementedError

    def end_offsets(self) -> Mapping[TopicPartition, int]:
        return {}

    async def rewind(self) -> None:
        self.rewinds += 1
        self.read += 1
        self.position = dict(self.committed)

    async def wait_revocation(self, seen: int) -> int:
        await trio.sleep_forever()
        raise AssertionError

    async def transaction_state(self) -> TransactionState:
        owned = frozenset(TopicPartition(TOPIC, p) for p in PARTITIONS)
        return TransactionState(object(), self.revocations, owned)

    def fetch(self, partition: int, count: int) -> list[Record]:
        start = self.position[partition]
        end = min(LOG_LENGTH, start + count)
        self.position[partition] = end
        return [Record(TOPIC, partition, offset, None, b"{}") for offset in range(start, end)]


Step = tuple[str, int, int]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("fetch"), st.sampled_from(PARTITIONS), st.integers(1, 3)),
        st.tuples(st.just("fetch, hold"), st.sampled_from(PARTITIONS), st.integers(1, 3)),
        st.tuples(st.just("hand on"), st.just(0), st.just(0)),
        st.tuples(st.just("finish"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("round"), st.just(0), st.just(0)),
        st.tuples(st.just("abort next"), st.just(0), st.just(0)),
        st.tuples(st.just("revoke"), st.just(0), st.just(0)),
    ),
    max_size=40,
)


async def _run(steps: list[Step]) -> ModelLog:
    log = ModelLog()
    commits = CommitTracker()
    outbox = Outbox(log, max_envelope_bytes=1 << 20, holds_outputs=True)
    delivery = ExactlyOnce(log, commits, outbox, "runtime-model", interval_s=1.0, max_records=100)
    running: list[tuple[Record, int, Ticket]] = []
    held: list[tuple[Admitted, int]] = []
    """Batches polled (and admitted) but not yet handed to the nodes, with their read."""
    every = [TopicPartition(TOPIC, p) for p in PARTITIONS]

    def fetch(partition: int, count: int, *, hold: bool = False) -> None:
        admitted = delivery.admit(log.fetch(partition, count))
        held.append((admitted, log.read))
        if not hold:
            hand_on()

    def hand_on() -> None:
        admitted, read = held.pop(0)
        for record, mark in zip(admitted.records, admitted.marks, strict=True):
            ticket = Ticket(partial(CommitTracker.settle, [mark]), marks=[mark])
            running.append((record, read, ticket))

    async def finish(index: int) -> None:
        record, read, ticket = running.pop(index % len(running))
        value = f"{record.partition}:{record.offset}:{read}".encode()
        await outbox.publish(OutboundRecord("evt", value), ticket)
        ticket.seal()

    for action, first, second in steps:
        if action == "fetch":
            fetch(first, second)
        elif action == "fetch, hold":
            fetch(first, second, hold=True)
        elif action == "hand on" and held:
            hand_on()
        elif action == "finish" and running:
            await finish(first)
        elif action == "round":
            await delivery.commit(log)
        elif action == "abort next":
            log.abort_next = True
        elif action == "revoke":  # an eager rebalance that gives them back
            log.revocations += 1
            commits.revoked(every)
            commits.assigned(every)
    # the end: everything fetched is finished and committed, the log read to its end
    log.abort_next = False
    while held:
        hand_on()
    for _ in range(4 * LOG_LENGTH):
        for partition in PARTITIONS:
            fetch(partition, LOG_LENGTH)
        while running:
            await finish(0)
        await delivery.commit(log)
        if all(log.committed[p] == LOG_LENGTH for p in PARTITIONS):
            break
    return log


# a batch polled before a revocation, handed on after the read-again: tracked then, its
# fresh read began past the voided record before it, and committed past it
HELD_ACROSS_A_REVOCATION = [
    ("fetch", 0, 1),
    ("fetch, hold", 0, 1),
    ("revoke", 0, 0),
    ("round", 0, 0),
    ("hand on", 0, 0),
    ("finish", 0, 0),
    ("round", 0, 0),
]


@settings(max_examples=1000, deadline=None)
@given(STEPS)
@example(HELD_ACROSS_A_REVOCATION)
def test_each_record_is_answered_once_with_its_offset_whatever_the_interleaving(
    steps: list[Step],
) -> None:
    log = trio.run(_run, steps)
    answered: dict[tuple[int, int], int] = {}
    committed = dict.fromkeys(PARTITIONS, 0)
    for transaction in log.transactions:
        committed.update(transaction.offsets)
        for partition, offset, read in transaction.outputs:
            assert offset < committed[partition], "an output committed without its offset"
            answered[(partition, offset)] = answered.get((partition, offset), 0) + 1
            assert read == transaction.read, "an output of a read a rewind voided"
        for partition in PARTITIONS:
            below = [o for o in range(committed[partition]) if (partition, o) not in answered]
            assert below == [], f"offsets committed past unanswered records {below}"
    assert all(count == 1 for count in answered.values()), "a record answered twice"
    assert committed == dict.fromkeys(PARTITIONS, LOG_LENGTH)
    assert len(answered) == LOG_LENGTH * len(PARTITIONS)


async def test_a_round_commits_at_once_when_everything_read_is_answered(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = ModelLog()
    commits = CommitTracker()
    outbox = Outbox(log, max_envelope_bytes=1 << 20, holds_outputs=True)
    delivery = ExactlyOnce(log, commits, outbox, "runtime-model", interval_s=60.0, max_records=100)

    async def answer(record: Record, ticket: Ticket) -> None:
        value = f"{record.partition}:{record.offset}:0".encode()
        await outbox.publish(OutboundRecord("evt", value), ticket)
        ticket.seal()

    tickets = []
    for record in log.fetch(0, 2):
        marks = delivery.admit([record]).marks
        tickets.append((record, Ticket(partial(commits.done, marks), marks=marks)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(delivery.run, log)
        await answer(*tickets[0])
        await trio.sleep(5)
        assert log.transactions == []  # a record is still in flight: the interval decides
        started = trio.current_time()
        await answer(*tickets[1])
        await log.transacted.wait()
        assert trio.current_time() - started < 0.01  # not the 55 s left of the interval
        assert log.transactions[0].offsets == {0: 2}
        assert sorted(log.transactions[0].outputs) == [(0, 0, 0), (0, 1, 0)]
        nursery.cancel_scope.cancel()


async def test_a_restore_waits_for_the_transaction_under_way() -> None:
    log = ModelLog()
    commits = CommitTracker()
    outbox = Outbox(log, max_envelope_bytes=1 << 20, holds_outputs=True)
    delivery = ExactlyOnce(log, commits, outbox, "runtime-model", interval_s=60.0, max_records=100)
    log.brokers_answer = trio.Event()
    (record,) = log.fetch(0, 1)
    marks = delivery.admit([record]).marks
    ticket = Ticket(partial(commits.done, marks), marks=marks)
    await outbox.publish(OutboundRecord("evt", b"0:0:0"), ticket)
    ticket.seal()
    restored_after: list[int] = []

    async def restore() -> None:
        await delivery.settled()
        restored_after.append(len(log.transactions))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(delivery.commit, log)
        await log.committing.wait()
        nursery.start_soon(restore)
        await wait_all_tasks_blocked()
        assert restored_after == []  # the transaction is open: its writes not readable yet
        log.brokers_answer.set()
    assert restored_after == [1]
