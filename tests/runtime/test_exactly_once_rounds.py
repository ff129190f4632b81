"""The exactly-once strategy's rounds against a model of the log, in any interleaving.

``ExactlyOnce`` runs with a fake transactional bus and consumer that keep a model of
two partitions: what was fetched, in which read (a rewind starts a new one), what each
transaction carried and which offsets it committed. Hypothesis draws interleavings of
fetches, records finishing in any order, transaction rounds, aborted transactions and
revocations (here the member gets its partitions back, so reading again must lose and
double nothing; partitions handed to another member are the fault harness's scenarios);
then everything is finished and committed. Checked against the model:

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
from hypothesis import given, settings
from hypothesis import strategies as st

from onex_actors.core import TopicPattern, TransactionAborted
from onex_actors.runtime import (
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

    def fetch(partition: int, count: int) -> None:
        records = delivery.admit(log.fetch(partition, count))
        for record in records:
            marks = commits.track([record])
            ticket = Ticket(partial(CommitTracker.settle, marks), marks=marks)
            running.append((record, log.read, ticket))

    async def finish(index: int) -> None:
        record, read, ticket = running.pop(index % len(running))
        value = f"{record.partition}:{record.offset}:{read}".encode()
        await outbox.publish(OutboundRecord("evt", value), ticket)
        ticket.seal()

    for action, first, second in steps:
        if action == "fetch":
            fetch(first, second)
        elif action == "finish" and running:
            await finish(first)
        elif action == "round":
            await delivery.commit(log)
        elif action == "abort next":
            log.abort_next = True
        elif action == "revoke":
            log.revocations += 1
    # the end: everything fetched is finished and committed, the log read to its end
    log.abort_next = False
    for _ in range(4 * LOG_LENGTH):
        for partition in PARTITIONS:
            fetch(partition, LOG_LENGTH)
        while running:
            await finish(0)
        await delivery.commit(log)
        if all(log.committed[p] == LOG_LENGTH for p in PARTITIONS):
            break
    return log


@settings(max_examples=300, deadline=None)
@given(STEPS)
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
        marks = commits.track([record])
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
