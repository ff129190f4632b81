"""Ports the runtime talks through: handlers do the work, a bus moves records.

Adapters live in ``onex_actors.handlers`` and ``onex_actors.bridges``; the runtime
knows only these protocols.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

import attrs
import msgspec
from pydantic import JsonValue

from onex_actors.core import HandlerError, OnexEnvelope, TopicPattern

__all__ = [
    "AckCallback",
    "BatchAck",
    "BatchHandler",
    "Bus",
    "BusConsumer",
    "ChangelogBus",
    "Handler",
    "HandlerHealth",
    "OutboundRecord",
    "PartitionEvents",
    "PartitionFollower",
    "PureHandler",
    "PureOutcome",
    "Record",
    "SqlPool",
    "TopicPartition",
]


@attrs.frozen
class HandlerHealth:
    """A handler's own view of its health (pool connected, last call ok...)."""

    healthy: bool
    detail: str = ""


class Handler(Protocol):
    """Does a node's work for one envelope.

    A handler may also offer ``execute_batch(envelopes)``, returning for each envelope
    its payload or the ``HandlerError`` it failed with, in order (see ``BatchHandler``);
    the runtime then hands it everything waiting in the node's inbox at once.

    ``execute`` returns the result payload, or raises ``HandlerError`` for a failure the
    runtime should report (and retry, when ``retryable``). Any other exception is a bug
    and crashes the node actor.
    """

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        """Handle ``envelope`` and return the payload of its result event."""
        ...

    async def health_check(self) -> HandlerHealth:
        """Report whether the handler can do its work now."""
        ...

    async def aclose(self) -> None:
        """Release what the handler holds (clients, pools)."""
        ...


class BatchHandler(Handler, Protocol):
    """A handler that can also do the work of many envelopes in one call."""

    async def execute_batch(
        self, envelopes: Sequence[OnexEnvelope]
    ) -> Sequence[Mapping[str, JsonValue] | HandlerError]:
        """Handle ``envelopes``; return each one's result payload or failure, in order.

        Raising (anything) crashes the node actor, as ``execute`` raising a non-
        ``HandlerError`` does; the envelopes are then replayed one at a time.
        """
        ...


class PureOutcome(msgspec.Struct, frozen=True, gc=False):
    """A pure node's answer to one command: its result payload and the commands it sends."""

    payload: Mapping[str, JsonValue] | None
    """The result payload; ``None`` when the command is not answered here: it is sent
    on (``commands`` then holds it, to the partition its state lives in), or its
    partition went to another member, which answers it."""
    commands: tuple[tuple[OnexEnvelope, str, int | None], ...] = ()
    """Commands to send (a reducer's intents): each with its topic and partition (``None``:
    the bus's partitioner picks it)."""
    records: tuple[OutboundRecord, ...] = ()
    """Records written with the answer, in the same transaction (a reducer's changelog)."""
    payload_is_json: bool = False
    """Whether ``payload`` was built by the core from JSON values only (a reducer's
    answer): its answer is not validated as JSON again."""
    records_last: bool = False
    """At least once, write ``records`` only once the answer and ``commands`` are
    acknowledged. For state that holds the command but cannot send its commands again
    (a reducer's intents): a crash between the two must leave the state without the
    command, to be decided (and its commands sent) again, not the commands lost."""


class PureHandler(Handler, Protocol):
    """A pure node's logic: decides a whole slice at once, synchronously, without I/O.

    Nothing is awaited between reading a key's state and writing it, so the commands of
    a slice fold in the order they were read. A failure of one command is its
    ``HandlerError`` (never retried: the same input fails the same way).
    """

    def decide_batch(
        self, inputs: Sequence[tuple[OnexEnvelope, Record | None]]
    ) -> Sequence[PureOutcome | HandlerError]:
        """Decide each (envelope, the record it was read from); outcomes in order."""
        ...


class TopicPartition(msgspec.Struct, frozen=True, order=True, gc=False):
    """One partition of one topic."""

    topic: str
    partition: int


class Record(msgspec.Struct, frozen=True, gc=False):
    """A record read from a bus, with where it was read from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    """``None`` for a record with no value: a tombstone, or headers only."""
    headers: tuple[tuple[str, bytes | None], ...] = ()
    unreadable: str | None = None
    """Why the client could not read this record (its value is then ``None``)."""

    @property
    def topic_partition(self) -> TopicPartition:
        """Topic and partition of this record."""
        return TopicPartition(self.topic, self.partition)

    def describe(self) -> str:
        """Return where the record came from, for error messages and dead letters."""
        return f"topic {self.topic} partition {self.partition} offset {self.offset}"


class OutboundRecord(msgspec.Struct, frozen=True, gc=False):
    """A record to produce."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    partition: int | None = None
    """The partition to write to; ``None``: the bus's partitioner picks it by key."""
    compacted: bool = False
    """A state record of a compacted changelog: a later record of the same topic,
    partition and key sent with it makes it redundant (``runtime._coalesce``)."""


AckCallback = Callable[[BaseException | None], None]
"""Called once a produced record is acknowledged (``None``) or has definitely failed."""


class PartitionEvents(Protocol):
    """What a consumer reports of its partitions to the runtime (the partition units).

    Called on the trio thread (a client whose callbacks run elsewhere hands them over).
    """

    def assigned(self, partitions: Sequence[TopicPartition]) -> None:
        """Take ``partitions``: the group gave them to this member."""
        ...

    def revoking(self, partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        """``partitions`` are about to go: return the offsets to commit before they do."""
        ...

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """``partitions`` went (or were lost)."""
        ...


BatchAck = Callable[[Sequence[tuple[int, BaseException]]], None]
"""Called once every record of a published list is settled, with the index and error of
each record that definitely failed (empty when all were acknowledged)."""


class BusConsumer(Protocol):
    """One member of a consumer group: reads batches, pauses, commits what it is told.

    The rule of what may be committed lives in the runtime (``CommitTracker``), once
    for every adapter; an adapter only carries the offsets to its bus.
    """

    async def poll(self, max_records: int) -> Sequence[Record]:
        """Wait for records and return a batch of at most ``max_records`` (never empty)."""
        ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` (per partition, the offset of the next record to read).

        Partitions this member no longer owns are left out. Raises ``BusError`` when
        the bus refuses the commit; the runtime tries again at its next commit.
        """
        ...

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop returning records of ``partitions`` from ``poll`` until resumed."""
        ...

    async def wait_assigned(self) -> None:
        """Return once this member owns partitions (at once where subscribing assigns them)."""
        ...

    def end_offsets(self) -> Mapping[TopicPartition, int]:
        """Return the log end offsets last seen of this member's partitions.

        No I/O: as of each partition's last fetch, so a paused partition's may be behind.
        """
        ...

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        """Return records of ``partitions`` again."""
        ...


class SqlPool(Protocol):
    """Connections a db handler runs statements on (adapter: ``bridges.postgres``).

    Failures are ``HandlerError``s, retryable or not, as the adapter maps them.
    """

    async def run(
        self, sql: str, args: Sequence[object]
    ) -> tuple[Sequence[Mapping[str, object]], str]:
        """Run one statement; return its rows and its status (``SELECT 1``, ``INSERT 0 1``)."""
        ...

    async def parameter_types(self, sql: str) -> tuple[str, ...]:
        """Return the database type name of each ``$n`` parameter of ``sql`` (``int4``...)."""
        ...

    async def ping(self) -> None:
        """Raise ``HandlerError`` if the database does not answer."""
        ...

    def size(self) -> int:
        """Return how many connections the pool holds now."""
        ...


AnswerOf = Callable[[Sequence[Mapping[str, object]], str], Mapping[str, JsonValue]]
"""Turns a statement's rows and status into the node's answer (its result payload)."""


class AnswerStore(Protocol):
    """Answers of nodes kept durably (``durable_idempotency``), by node and envelope id.

    A command redelivered after a restart is answered from here, not executed again.
    """

    async def run_once(
        self,
        node_id: str,
        envelope_id: uuid.UUID,
        sql: str,
        args: Sequence[object],
        answer_of: AnswerOf,
    ) -> tuple[Mapping[str, JsonValue], bool]:
        """Run ``sql`` and record its answer in one database transaction, unless answered.

        Returns the answer and whether it was recalled (then the statement did not run).
        """
        ...

    async def recall(self, node_id: str, envelope_id: uuid.UUID) -> Mapping[str, JsonValue] | None:
        """Return the recorded answer of ``envelope_id``, if any."""
        ...

    async def remember(
        self, node_id: str, envelope_id: uuid.UUID, answer: Mapping[str, JsonValue]
    ) -> None:
        """Record ``answer`` (a second record of one envelope keeps the first)."""
        ...

    async def prune(self, node_id: str, retention_s: float, max_entries: int) -> int:
        """Drop ``node_id``'s answers past ``retention_s`` or its newest ``max_entries``.

        Return how many went.
        """
        ...


class Bus(Protocol):
    """Topics, subscriptions by pattern, consumer groups and publishing."""

    def consumer(
        self,
        patterns: Sequence[TopicPattern],
        group_id: str,
        *,
        partitions: PartitionEvents | None = None,
    ) -> AbstractAsyncContextManager[BusConsumer]:
        """Join ``group_id`` subscribed to every topic matching ``patterns``.

        The consumer reports its partitions' lifecycle to ``partitions``: before a
        rebalance takes partitions away it commits the offsets ``revoking`` returns, so
        their next owner does not handle again what this member finished since its last
        commit.
        """
        ...

    async def publish(
        self, records: Sequence[OutboundRecord], on_ack: BatchAck | None = None
    ) -> None:
        """Queue ``records`` for producing, in order; ``on_ack`` is called once all settle.

        Returns when the records are queued, not when they are acknowledged, so a caller
        can keep working while the broker confirms; it waits only while the queue is
        full. Either all are queued or the call is cancelled, never part of them.
        """
        ...

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create the topics that do not exist yet, and learn their record size limits."""
        ...

    def record_limit(self, topic: str) -> int | None:
        """Return the largest record (see ``record_size``) the bus accepts on ``topic``, if any.

        Known at start-up: the producer's own limit, lowered to a topic's limit where
        ``ensure_topics`` could read it from the broker.
        """
        ...

    def unreachable(self) -> str | None:
        """Say since when no broker answers, or None while they do (or there are none)."""
        ...


@runtime_checkable
class ChangelogBus(Bus, Protocol):
    """A bus that keeps keyed state in changelog topics (what reducers need)."""

    async def prepare_changelogs(self, sources: Mapping[str, str]) -> dict[str, int]:
        """Create or check each changelog (changelog topic → the command topic it mirrors).

        Compacted, with the command topic's partition count; return each changelog's
        partition count. ``ConfigError`` for one that exists otherwise.
        """
        ...

    async def read_changelog(
        self,
        topic: str,
        partition: int,
        apply: Callable[[Sequence[Record]], None],
        *,
        start: int = 0,
    ) -> int:
        """Hand ``apply`` the committed records of a partition from ``start``, in order.

        Return how many were read.
        """
        ...

    async def changelog_bounds(self, topic: str, partition: int) -> tuple[int, int]:
        """Return a changelog partition's first offset and its end (last stable offset)."""
        ...


class PartitionFollower(Protocol):
    """Keeps something per partition in step with the commit tracker (keyed state)."""

    def assigned(self, partitions: Sequence[TopicPartition]) -> None:
        """Take ``partitions``: they are this member's now."""
        ...

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Note that everything before ``offsets`` is committed, outputs with it."""
        ...

    def read_again(self, partitions: Sequence[TopicPartition] | None) -> None:
        """Void what is in flight on ``partitions`` (``None``: all): it is read again."""
        ...

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Let ``partitions`` go: they are another member's now."""
        ...


@attrs.frozen
class TransactionState:
    """What a transaction needs of the consumer whose offsets it commits."""

    group_metadata: object | None
    """The member's group metadata; None while it is not settled in a generation with
    that generation's assignment (commit nothing then)."""
    revocations: int
    """How many times the client had taken partitions away, read after the metadata:
    metadata of a newer generation comes with its revocation counted."""
    owned: frozenset[TopicPartition]
    """The partitions the member owns in that generation: only theirs may be committed."""


@runtime_checkable
class RewindableConsumer(BusConsumer, Protocol):
    """A consumer that can read its partitions again from their last commit.

    What a transactional host (``delivery: exactly_once``) needs of its consumer besides
    the ``BusConsumer`` port: after an aborted transaction or a rebalance it reads again
    what the transaction carried.
    """

    async def rewind(self) -> None:
        """Read every owned partition again from its last committed offset.

        Batches fetched before and not yet returned by ``poll`` are dropped.
        """
        ...

    async def wait_revocation(self, seen: int) -> int:
        """Wait until this member has lost partitions more than ``seen`` times.

        Return how many times it has.
        """
        ...

    async def transaction_state(self) -> TransactionState:
        """Return what a transaction commits with: group metadata, revocations, owned.

        A revocation the runtime has not handled yet means records in flight may belong
        to another member now: read again before committing anything.
        """
        ...


@runtime_checkable
class TransactionalBus(Bus, Protocol):
    """A bus whose producer writes in transactions that also commit consumer offsets."""

    @property
    def transactional(self) -> bool:
        """Whether its producer was opened for transactions (else it cannot commit one)."""
        ...

    async def commit_transaction(
        self, offsets: Mapping[TopicPartition, int], group_metadata: object
    ) -> None:
        """Commit the open transaction with a group member's ``offsets``; open the next one.

        ``group_metadata`` is the member's (``RewindableConsumer.transaction_state``).

        It carries every record published before the call. Raises
        ``TransactionAborted`` when it was aborted instead (nothing of it is visible),
        ``BusError`` when the producer cannot go on (fenced by another one).
        """
        ...
