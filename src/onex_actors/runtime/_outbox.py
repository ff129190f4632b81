"""Publishing envelopes: encode, key, check the bus's limit, hand over with acknowledgement.

A record the bus refuses never stalls its partition silently. A failure other than its
size is tried once more (the Kafka bridge replaces a producer that failed for good).
Where the caller gave a ``fallback`` (a node's result), a failure that remains runs
it: the node answers with a small error event and a dead letter instead. A record that
gates a commit and has no fallback (a dead letter, a rejection), or whose fallback
refuses to replace it (``RecordLost``: a stateful node's state record or command), is
*lost*: the outbox sets ``lost`` and the host stops loudly, so the record is
redelivered after a restart, never skipped.

An outbox that *holds outputs* (the exactly-once strategy's) holds every output instead,
and counts it as delivered at once; :meth:`Outbox.release` hands the strategy, at each commit,
the outputs whose input records all lie in their partitions' done prefix, so a
transaction carries exactly the results of the offsets it commits.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Final

import trio
from pydantic import JsonValue

from onex_actors.core import (
    EnvelopeError,
    Fate,
    OnexEnvelope,
    encode_envelope,
    log_envelope,
    log_topic,
    record_key_and_headers,
)

from ._coalesce import superseded
from ._ports import AckCallback, Bus, OutboundRecord
from ._ticket import Ticket, ticket_of
from ._tracing import Tracer

__all__ = [
    "RECORD_OVERHEAD",
    "Fallback",
    "ListFallback",
    "Outbox",
    "RecordLost",
    "RuntimeLog",
    "over_the_limit",
    "record_size",
]

logger = logging.getLogger("onex_actors.runtime")

RECORD_OVERHEAD: Final = 128
"""Bytes a record takes in a batch besides its key, value and headers (an upper bound:
a v2 batch header is 61 bytes, a record's own varints at most about 30)."""

_KEY_AND_HEADERS: Final = 1024
"""Room kept for a record's key and headers when sizing a dead letter to fit its topic."""

Fallback = Callable[[BaseException], Awaitable[None]]
"""Replaces a record the bus failed to produce; called with the failure."""

ListFallback = Callable[[int, BaseException], Awaitable[None]]
"""Replaces the record at an index of a published list; called with index and failure."""


class RecordLost(Exception):
    """Raised by a fallback whose record nothing may replace: the host stops instead.

    Its message says which record and why; the outbox reports it as the reason the
    record was lost, so nothing past it is committed and it is read again after a
    restart.
    """


def _for_any(fallback: Fallback, _index: int, error: BaseException) -> Awaitable[None]:
    return fallback(error)


def over_the_limit(size: int, topic: str, limit: int | None) -> str:
    """Say, in an error message, that a ``size``-byte record is more than ``topic`` takes."""
    return (
        f"a {size}-byte record on {topic}, over the {limit} bytes the producer may send "
        "there (the smaller of kafka.max_request_bytes and the topic's max.message.bytes)"
    )


def record_size(record: OutboundRecord) -> int:
    """Bytes ``record`` counts against a producer's or topic's size limit (upper bound)."""
    headers = sum(len(name.encode()) + len(value or b"") for name, value in record.headers)
    return len(record.value or b"") + len(record.key or b"") + headers + RECORD_OVERHEAD


class Outbox:
    """Encodes envelopes and publishes them, counting each against a ``Ticket``.

    Run :meth:`run` in a nursery for as long as records are published: it runs the
    fallbacks of failed records.
    """

    def __init__(self, bus: Bus, *, max_envelope_bytes: int, holds_outputs: bool = False) -> None:
        self.bus = bus
        self.max_envelope_bytes = max_envelope_bytes
        self.holds_outputs = holds_outputs
        """Hold outputs for :meth:`release` instead of publishing them at once."""
        self._held: list[tuple[Ticket | None, OutboundRecord]] = []
        self._held_more = trio.Event()
        self.unacknowledged = 0
        """Records handed to the bus whose acknowledgement (or fallback) is still due."""
        self.failed = 0
        """Records the bus failed to produce (replaced by their fallback or not)."""
        self.lost = trio.Event()
        """Set once a record that gates a commit failed with no fallback."""
        self.lost_reason: str | None = None
        self.coalesced: Counter[str] = Counter()
        """State records left out, per changelog topic: a later record of the same key
        went in the same list (a slice's outputs, or a transaction's)."""
        self._settled = trio.Event()
        self._settled.set()
        self._due, self._jobs = trio.open_memory_channel[Callable[[], Awaitable[None]]](math.inf)
        self.tracer: Tracer | None = None
        """Gives each output of a sampled flow its producer span (``None``: tracing off)."""

    def envelope_limit(self, topic: str) -> int:
        """Return the largest encoded envelope that fits on ``topic`` with its key and headers."""
        limit = self.bus.record_limit(topic)
        if limit is None:
            return self.max_envelope_bytes
        return max(0, min(self.max_envelope_bytes, limit - RECORD_OVERHEAD - _KEY_AND_HEADERS))

    def encode(self, envelope: OnexEnvelope, topic: str) -> OutboundRecord:
        """Encode ``envelope`` for ``topic``.

        Raises ``EnvelopeError`` (``oversize``) past ``max_envelope_bytes``, and
        (``result_too_large``) when the record is over what the bus accepts on ``topic``.
        """
        if self.tracer is not None:
            envelope = self.tracer.produce(envelope, topic)
        value = encode_envelope(envelope, max_bytes=self.max_envelope_bytes)
        key, headers = record_key_and_headers(envelope)
        record = OutboundRecord(topic, value, key, headers)
        limit = self.bus.record_limit(topic)
        if (
            limit is not None
            and len(value) + len(key) + _KEY_AND_HEADERS > limit  # else far below it
            and (size := record_size(record)) > limit
        ):
            raise EnvelopeError(
                f"envelope {envelope.envelope_id} is {over_the_limit(size, topic, limit)}: "
                "send large data by reference, or raise both limits",
                reason="result_too_large",
            )
        return record

    async def emit(
        self,
        envelope: OnexEnvelope,
        topic: str,
        ticket: Ticket | None = None,
        *,
        fallback: Fallback | None = None,
    ) -> OutboundRecord:
        """Publish ``envelope`` on ``topic`` and return the record; see :meth:`encode`."""
        record = self.encode(envelope, topic)
        await self.publish(record, ticket, fallback=fallback)
        return record

    async def publish(
        self,
        record: OutboundRecord,
        ticket: Ticket | None = None,
        *,
        fallback: Fallback | None = None,
    ) -> None:
        """Publish an encoded ``record``, counted against ``ticket``."""
        on_ack = ticket.expect() if ticket is not None else None
        await self.publish_many(
            [record], [on_ack], None if fallback is None else partial(_for_any, fallback)
        )

    async def publish_many(
        self,
        records: Sequence[OutboundRecord],
        acks: Sequence[AckCallback | None],
        fallback: ListFallback | None = None,
    ) -> None:
        """Publish encoded ``records`` as one list; ``acks[i]`` settles ``records[i]``.

        ``fallback(i, error)`` replaces ``records[i]`` if it cannot be produced. A
        An outbox that holds outputs holds them and acknowledges them at once.
        """
        if self.holds_outputs:
            self._hold(records, acks)
            await trio.lowlevel.checkpoint()
            return
        count = len(records)
        self.unacknowledged += count
        if self._settled.is_set():
            self._settled = trio.Event()
        try:
            await self.bus.publish(
                records, partial(self._list_acknowledged, records, acks, fallback)
            )
        except BaseException:
            # nothing was queued: withdraw the outputs, so their tickets do not wait on
            # them (an envelope not yet finished is handled again and expects anew)
            self._settle(count)
            for on_ack in acks:
                if on_ack is not None:
                    on_ack(None)
            raise

    @property
    def held(self) -> int:
        """Outputs held for a later transaction."""
        return len(self._held)

    async def wait_held(self, count: int) -> None:
        """Wait until the outbox holds at least ``count`` outputs."""
        while len(self._held) < count:
            self._held_more = trio.Event()
            await self._held_more.wait()

    def _hold(self, records: Sequence[OutboundRecord], acks: Sequence[AckCallback | None]) -> None:
        for record, on_ack in zip(records, acks, strict=True):
            self._held.append((ticket_of(on_ack), record))
        self._held_more.set()
        for on_ack in acks:
            if on_ack is not None:
                on_ack(None)

    def release(self) -> list[OutboundRecord]:
        """Take the held outputs a transaction may carry now, in the order they were held.

        Those whose input records all lie in their partitions' done prefix (so the same
        commit covers their offsets), and those of no input (runtime log events). The
        outputs of records to be read again (a retired partition) are dropped; the rest
        wait for a later transaction. A state record that a later one of the same key
        released with it makes redundant is left out (the transaction writes both or
        neither).
        """
        released: list[OutboundRecord] = []
        kept: list[tuple[Ticket | None, OutboundRecord]] = []
        for ticket, record in self._held:
            fate = Fate.RIDES if ticket is None else ticket.fate()
            if fate is Fate.RIDES:
                released.append(record)
            elif fate is Fate.WAITS:
                kept.append((ticket, record))
        self._held = kept
        dropped = superseded(released)
        if not dropped:
            return released
        for index in dropped:
            self.coalesced[released[index].topic] += 1
        return [record for index, record in enumerate(released) if index not in dropped]

    def drop_void(self) -> int:
        """Drop the held outputs of records to be read again (retired partitions)."""
        before = len(self._held)
        self._held = [(t, r) for t, r in self._held if t is None or t.fate() is not Fate.VOID]
        return before - len(self._held)

    async def send_released(self, records: Sequence[OutboundRecord]) -> None:
        """Hand released outputs to the bus, into its open transaction.

        A failure is only counted: the transaction's commit then fails and aborts it,
        and its input records are read again.
        """
        if not records:
            return
        self._settle(-len(records))
        await self.bus.publish(records, partial(self._released_acknowledged, len(records)))

    def _released_acknowledged(
        self, count: int, failures: Sequence[tuple[int, BaseException]]
    ) -> None:
        self.failed += len(failures)
        for _, error in failures[:1]:
            logger.warning("an output of the open transaction failed: %s", error)
        self._settle(count)

    async def run(self) -> None:
        """Retry failed records and run their fallbacks, until cancelled."""
        async for job in self._jobs:
            await job()

    async def _retry(
        self, record: OutboundRecord, on_ack: AckCallback | None, fallback: Fallback | None
    ) -> None:
        def settled(failures: Sequence[tuple[int, BaseException]]) -> None:
            error = failures[0][1] if failures else None
            self._acknowledged(record, on_ack, fallback, 2, error)

        await self.bus.publish([record], settled)

    async def _replace(
        self, fallback: Fallback, error: BaseException, on_ack: AckCallback | None
    ) -> None:
        try:
            await fallback(error)
        except RecordLost as exc:
            self._lose(str(exc))
            if on_ack is not None:
                on_ack(error)
        except Exception as exc:
            self._lose(f"{error}; and its replacement failed too: {exc}")
            if on_ack is not None:
                on_ack(error)
        else:
            if on_ack is not None:
                on_ack(None)
        self._settle(1)

    async def wait_acknowledged(self, timeout_s: float) -> bool:
        """Wait until every record is acknowledged or replaced; return whether all were.

        False when time ran out or any record was lost.
        """
        with trio.move_on_after(timeout_s):
            await self._settled.wait()
        return self._settled.is_set() and not self.lost.is_set()

    def _list_acknowledged(
        self,
        records: Sequence[OutboundRecord],
        acks: Sequence[AckCallback | None],
        fallback: ListFallback | None,
        failures: Sequence[tuple[int, BaseException]],
    ) -> None:
        if not failures:
            self._settle(len(records))
            for on_ack in acks:
                if on_ack is not None:
                    on_ack(None)
            return
        failed = dict(failures)
        for index, record in enumerate(records):
            replace = None if fallback is None else partial(fallback, index)
            self._acknowledged(record, acks[index], replace, 1, failed.get(index))

    def _acknowledged(
        self,
        record: OutboundRecord,
        on_ack: AckCallback | None,
        fallback: Fallback | None,
        attempt: int,
        error: BaseException | None,
    ) -> None:
        if error is not None:
            self.failed += 1
            if attempt == 1 and getattr(error, "reason", None) != "result_too_large":
                # e.g. aborted with the rest of a batch when the producer failed: once more
                self._due.send_nowait(partial(self._retry, record, on_ack, fallback))
                return  # settled by the retry's acknowledgement
            if fallback is not None:
                self._due.send_nowait(partial(self._replace, fallback, error, on_ack))
                return  # settled once the fallback has run
            if on_ack is not None:
                self._lose(f"producing a record to {record.topic} failed: {error}")
        self._settle(1)
        if on_ack is not None:
            on_ack(error)

    def _settle(self, count: int) -> None:
        self.unacknowledged -= count
        if self.unacknowledged == 0:
            self._settled.set()
        elif self._settled.is_set():
            self._settled = trio.Event()

    def _lose(self, reason: str) -> None:
        logger.error("%s", reason)
        if self.lost_reason is None:
            self.lost_reason = reason
        self.lost.set()


class RuntimeLog:
    """Start, stop, restart, dlq and health changes: to the log topic and the process log."""

    def __init__(self, outbox: Outbox, runtime_id: str) -> None:
        self.outbox = outbox
        self.runtime_id = runtime_id
        self.topic = log_topic(runtime_id)

    async def event(
        self,
        event: str,
        details: Mapping[str, JsonValue] | None = None,
        *,
        level: int = logging.INFO,
    ) -> None:
        """Record ``event`` with ``details``."""
        extra = " ".join(f"{k}={v}" for k, v in (details or {}).items())
        fields = {"runtime_id": self.runtime_id, "event": event, **(details or {})}
        logger.log(level, "%s %s %s", self.runtime_id, event, extra, extra={"onex": fields})
        try:
            await self.outbox.emit(log_envelope(self.runtime_id, event, details), self.topic)
        except EnvelopeError as exc:
            logger.warning("%s: log event %s not published: %s", self.runtime_id, event, exc)
