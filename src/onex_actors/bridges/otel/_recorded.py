"""Spans as the hot path records them: plain slots, ended into a queue as plain tuples.

The SDK's own span validates each attribute, takes a lock and calls its processors as it
starts and ends (with the context propagation around it, about 60 µs a span on the
machine of docs/benchmarks.md, 3 spans for each envelope of a sampled flow). A
``RecordedSpan`` holds what a span is (names, ids, times, attributes, events, links,
status) and ends as one tuple of built-in values (``SpanTuple``), which the export
process turns into the SDK's ``ReadableSpan`` (``readable_spans``) for its OTLP
exporter. The attributes are the runtime's own (strings, numbers, booleans, lists of
strings), so there is nothing to validate.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

__all__ = ["AttributeValue", "RecordedSpan", "SpanTuple", "new_span_id", "readable_spans"]

AttributeValue = str | int | float | bool | list[str]
Attributes = dict[str, AttributeValue]
SpanTuple = tuple[
    str,  # name
    int,  # kind (SpanKind's value)
    int,  # trace id
    int,  # span id
    int | None,  # parent span id
    bool,  # whether the parent is another process's (read from headers)
    str | None,  # the parent's tracestate header, carried on
    int,  # start, ns since the epoch
    int,  # end
    Attributes,
    list[tuple[str, int, Attributes]],  # events: name, time, attributes
    list[tuple[int, int]],  # links: trace id, span id
    int,  # status code (StatusCode's value)
    str | None,  # status description
]
"""An ended span, in built-in types only (``marshal`` carries it to the export process)."""

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def new_span_id() -> int:
    """Return a random, valid (non-zero) span id."""
    span_id = random.getrandbits(64)
    while span_id == 0:
        span_id = random.getrandbits(64)
    return span_id


class RecordedSpan:
    """A span being recorded; ``end`` hands it to ``ended`` once, as a ``SpanTuple``."""

    __slots__ = (
        "attributes",
        "done",
        "ended",
        "events",
        "kind",
        "links",
        "name",
        "parent_id",
        "parent_remote",
        "span_id",
        "start_ns",
        "status",
        "status_message",
        "trace_id",
        "trace_state",
    )

    def __init__(
        self,
        ended: Callable[[SpanTuple], None],
        name: str,
        kind: SpanKind,
        trace_id: int,
        attributes: Attributes,
        *,
        parent_id: int | None = None,
        parent_remote: bool = False,
        trace_state: str | None = None,
        links: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.ended = ended
        self.name = name
        self.kind = kind.value
        self.trace_id = trace_id
        self.span_id = new_span_id()
        self.parent_id = parent_id
        self.parent_remote = parent_remote
        self.trace_state = trace_state
        self.attributes = attributes
        self.links = list(links)
        self.events: list[tuple[str, int, Attributes]] = []
        self.status = StatusCode.UNSET.value
        self.status_message: str | None = None
        self.done = False
        self.start_ns = time.time_ns()

    @property
    def traceparent(self) -> str:
        """This span's context as a W3C ``traceparent`` header (always sampled)."""
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-01"

    def add_event(self, name: str, attributes: Mapping[str, AttributeValue]) -> None:
        """Record ``name`` now, with ``attributes``."""
        self.events.append((name, time.time_ns(), dict(attributes)))

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Add or replace attributes."""
        self.attributes.update(attributes)

    def set_error(self, message: str) -> None:
        """Give the span an error status."""
        self.status = StatusCode.ERROR.value
        self.status_message = message

    def record_exception(self, exc: BaseException) -> None:
        """Add an ``exception`` event and an error status, as the SDK records a raising call."""
        kind = type(exc)
        module = kind.__module__
        name = kind.__qualname__
        if module and module != "builtins":
            name = f"{module}.{name}"
        self.add_event(
            "exception",
            {
                "exception.type": name,
                "exception.message": str(exc),
                "exception.stacktrace": "".join(traceback.format_exception(exc)),
            },
        )
        self.set_error(f"{kind.__name__}: {exc}")

    def end(self) -> None:
        """End the span (once; a second call does nothing)."""
        if self.done:
            return
        self.done = True
        self.ended(
            (
                self.name,
                self.kind,
                self.trace_id,
                self.span_id,
                self.parent_id,
                self.parent_remote,
                self.trace_state,
                self.start_ns,
                time.time_ns(),
                self.attributes,
                self.events,
                self.links,
                self.status,
                self.status_message,
            )
        )


def readable_spans(
    spans: Iterable[SpanTuple], resource: Resource, scope: InstrumentationScope
) -> list[ReadableSpan]:
    """Return the SDK's spans of ``spans`` (what its exporters take)."""
    found = []
    for (
        name,
        kind,
        trace_id,
        span_id,
        parent_id,
        parent_remote,
        trace_state,
        start_ns,
        end_ns,
        attributes,
        events,
        links,
        status,
        message,
    ) in spans:
        state = TraceState.from_header([trace_state]) if trace_state else None
        parent = (
            None
            if parent_id is None
            else SpanContext(trace_id, parent_id, parent_remote, _SAMPLED, state)
        )
        found.append(
            ReadableSpan(
                name=name,
                context=SpanContext(trace_id, span_id, False, _SAMPLED, state),
                parent=parent,
                resource=resource,
                attributes=attributes,
                events=[Event(n, a, timestamp=t) for n, t, a in events],
                links=[Link(SpanContext(t, s, False, _SAMPLED)) for t, s in links],
                kind=SpanKind(kind),
                status=Status(StatusCode(status), message),
                start_time=start_ns,
                end_time=end_ns,
                instrumentation_scope=scope,
            )
        )
    return found
