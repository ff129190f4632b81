"""Ports the runtime talks through: handlers do the work, a bus moves records.

Adapters live in ``onex_actors.handlers`` and ``onex_actors.bridges``; the runtime
knows only these protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import attrs
from pydantic import JsonValue

from onex_actors.core import OnexEnvelope, TopicPattern

__all__ = [
    "AckCallback",
    "Bus",
    "BusConsumer",
    "Handler",
    "HandlerHealth",
    "OutboundRecord",
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


@attrs.frozen(order=True)
class TopicPartition:
    """One partition of one topic."""

    topic: str
    partition: int


@attrs.frozen
class Record:
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


@attrs.frozen
class OutboundRecord:
    """A record to produce."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()


AckCallback = Callable[[BaseException | None], None]
"""Called once a produced record is acknowledged (``None``) or has definitely failed."""


class BusConsumer(Protocol):
    """One member of a consumer group, reading batches and tracking what is done."""

    async def poll(self, max_records: int) -> Sequence[Record]:
        """Wait for records and return a batch of at most ``max_records`` (never empty)."""
        ...

    def mark_done(self, record: Record) -> None:
        """Record that ``record``'s results are acknowledged; its offset may be committed."""
        ...

    async def commit(self) -> None:
        """Commit, per partition, up to (not past) the oldest record not yet done."""
        ...

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop returning records of ``partitions`` from ``poll`` until resumed."""
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


class Bus(Protocol):
    """Topics, subscriptions by pattern, consumer groups and publishing."""

    def consumer(
        self, patterns: Sequence[TopicPattern], group_id: str
    ) -> AbstractAsyncContextManager[BusConsumer]:
        """Join ``group_id`` subscribed to every topic matching ``patterns``."""
        ...

    async def publish(self, record: OutboundRecord, on_ack: AckCallback | None = None) -> None:
        """Queue ``record`` for producing; ``on_ack`` is called once it is acknowledged.

        Returns when the record is queued, not when it is acknowledged, so a caller can
        keep working while the broker confirms; it waits only while the queue is full.
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
