"""The tracing port: what the runtime tells a tracer about the envelopes it handles.

Off by default: a node without a ``Tracer`` does no tracing work at all. With one, each
envelope a node takes gets an ``EnvelopeSpan`` (the consumer span of its handling, or
``None`` when its flow is not sampled), the handler call gets a span of its own, and
retries, dead letters and restarts are events of the envelope's span. The tracer hands
back the envelope carrying its span's context (``traceparent``), so every output derived
from it (its result, the command its ``then`` forwards, its dead letter, a reducer's
intents, a workflow's steps) continues the flow's trace; the outbox then gives each
output a producer span of its own, whose context the output carries on to the next hop.
``bridges.otel`` implements it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from pydantic import JsonValue

from onex_actors.core import HostedNode, OnexEnvelope

from ._ports import Record

__all__ = ["EnvelopeSpan", "HandlerSpan", "Tracer"]

Attributes = Mapping[str, str | int | float | bool]


class EnvelopeSpan(Protocol):
    """The span of one envelope's handling by one node (the messaging ``process`` span)."""

    def event(self, name: str, attributes: Attributes) -> None:
        """Record ``name`` (a retry, a restart...) on the span."""

    def failed(self, error_type: str, message: str) -> None:
        """Mark the span failed: the envelope was answered with an error and dead-lettered."""

    def end(self) -> None:
        """End the span (the envelope handed over all its outputs)."""


class HandlerSpan(Protocol):
    """The span of one handler call (one envelope, or a slice handled in one call)."""

    def answered(self, payload: Mapping[str, JsonValue]) -> None:
        """Add what the answer tells about the call (status code, tokens used...).

        A call that raises is marked failed by the span itself, with its exception.
        """


class Tracer(Protocol):
    """Starts the spans of a host's nodes (see the module)."""

    def consume(
        self, node: HostedNode, envelope: OnexEnvelope, record: Record | None
    ) -> tuple[OnexEnvelope, EnvelopeSpan | None]:
        """Start the span of ``node`` handling ``envelope`` (read from ``record``).

        Return the envelope to handle (carrying the span's context, or the flow's
        decision not to sample it) and the span (``None`` when not sampled).
        """

    def handling(
        self, node: HostedNode, spans: Sequence[EnvelopeSpan]
    ) -> AbstractContextManager[HandlerSpan | None]:
        """Open the span of a handler call for the envelopes whose ``spans`` are given.

        One envelope: a child of its span. A slice handled in one call: a child of the
        first, linked to the others. No spans (nothing sampled): no span (``None``).
        """

    def produce(self, envelope: OnexEnvelope, topic: str) -> OnexEnvelope:
        """Record the creation of ``envelope`` for ``topic`` (a producer span).

        A child of the context ``envelope`` carries, when that is sampled; return the
        envelope carrying the producer span's context (as it is, when not sampled), so
        the next hop's span is the child of this one.
        """

    def transaction_aborted(self, reason: str, records: int) -> None:
        """Record an aborted transaction (its input records are read again)."""
