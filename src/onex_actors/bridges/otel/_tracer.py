"""``OtelTracer``: the runtime's ``Tracer``, OpenTelemetry spans exported over OTLP/HTTP.

Each envelope a node handles is a consumer span (``process <topic>``, the messaging
conventions' attributes: system, destination, partition, offset, consumer group, message
and conversation ids), a child of the context its ``traceparent`` header carries. The
envelope then carries its span's context, so what is derived from it continues the
trace: a flow across nodes, hosts and workflows is one trace. Sampling is parent-based:
a ``traceparent`` decides; without one, the flow's ``correlation_id`` does (``_flows``):
it is the trace id of the flow's root span, and hashed against ``sampler_ratio`` it gives
every hop the same decision without a header, so a flow not sampled costs no span, no
header and no copy anywhere. Each output of a sampled flow gets a producer span
(``create <topic>``), a child of the span that handled its input, whose context it
carries to the next hop.

Spans are recorded light (``_recorded``) and exported by another process with the SDK's
OTLP exporter (``_shipping``): a sampled envelope costs the host its three spans' slots
and ids, not the SDK's span machinery and protobuf encoding.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import SpanKind, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import JsonValue

from onex_actors.core import TRACE_HEADERS, HostedNode, OnexEnvelope
from onex_actors.runtime import Record

from ._flows import flow_bound, flow_sampled
from ._recorded import Attributes, AttributeValue, RecordedSpan
from ._shipping import SpanShipper, open_span_shipper
from ._spans import Call, answer_attributes, call_of

__all__ = ["OtelTracer", "open_tracer"]

_PROPAGATOR = TraceContextTextMapPropagator()
_SAMPLED_FLAGS = tuple(f"{flags:02x}" for flags in range(256) if flags & 1)
"""W3C trace flags with the sampled bit set (a ``traceparent`` ends with its flags)."""


class _Parent:
    """The span context a header carries: its trace, span and trace state."""

    __slots__ = ("span_id", "trace_id", "trace_state")

    def __init__(self, trace_id: int, span_id: int, trace_state: str | None) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.trace_state = trace_state


def _parent_in(carrier: Mapping[str, str]) -> _Parent | None:
    """Return the span context ``carrier``'s trace headers hold; ``None`` if none valid."""
    context = get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
    if not context.is_valid:
        return None
    state = context.trace_state.to_header() if context.trace_state else None
    return _Parent(context.trace_id, context.span_id, state or None)


def _context_headers(span: RecordedSpan) -> dict[str, str]:
    """Return the trace headers that make the next hop's span a child of ``span``."""
    if span.trace_state:
        return {"traceparent": span.traceparent, "tracestate": span.trace_state}
    return {"traceparent": span.traceparent}


class _EnvelopeSpan:
    """An envelope's consumer span (``runtime.EnvelopeSpan``)."""

    __slots__ = ("span",)

    def __init__(self, span: RecordedSpan) -> None:
        self.span = span

    def event(self, name: str, attributes: Mapping[str, str | int | float | bool]) -> None:
        self.span.add_event(f"onex.{name}", attributes)

    def failed(self, error_type: str, message: str) -> None:
        self.span.add_event("onex.dead_letter", {"error.type": error_type})
        self.span.set_attributes({"error.type": error_type})
        self.span.set_error(message)

    def end(self) -> None:
        self.span.end()


class _HandlerSpan:
    """A handler call's span (``runtime.HandlerSpan``)."""

    __slots__ = ("node", "span")

    def __init__(self, span: RecordedSpan, node: HostedNode) -> None:
        self.span = span
        self.node = node

    def answered(self, payload: Mapping[str, JsonValue]) -> None:
        attributes = answer_attributes(self.node, payload)
        if attributes:
            self.span.set_attributes(attributes)


class OtelTracer:
    """Starts the spans of one host's nodes (see the module)."""

    def __init__(self, shipper: SpanShipper, ratio: float, consumer_group: str) -> None:
        self.shipper = shipper
        self.bound = flow_bound(ratio)
        self.consumer_group = consumer_group
        self._ended = shipper.ended
        self._calls: dict[str, Call] = {}

    def wait_loaded(self) -> None:
        """Block until the export process has loaded (``ExportProcessError`` if it fails).

        A host waits for it before it says it is ready, so the process's start (its
        imports: most of a second of a core) is not taken from the host's first work.
        """
        self.shipper.wait_loaded()

    def consume(
        self, node: HostedNode, envelope: OnexEnvelope, record: Record | None
    ) -> tuple[OnexEnvelope, _EnvelopeSpan | None]:
        """Start ``node``'s span of ``envelope``; return it carrying the span's context."""
        headers = envelope.headers
        carrier: Mapping[str, str] = headers
        if "traceparent" not in headers and record is not None:
            for name, _ in record.headers:
                if name == "traceparent":  # an outside producer's context, in Kafka's headers
                    carrier = {
                        k: v.decode("latin-1")
                        for k, v in record.headers
                        if k in TRACE_HEADERS and v is not None
                    }
                    break
        traceparent = carrier.get("traceparent")
        parent = None
        if traceparent is not None:
            if not traceparent.endswith(_SAMPLED_FLAGS):
                return envelope, None  # not sampled upstream: nothing recorded here either
            parent = _parent_in(carrier)
        if parent is None:
            # the flow's own decision, the same at every hop: no header needed for it
            flow = envelope.correlation_id.int
            if not flow_sampled(flow, self.bound):
                return envelope, None
            parent = _Parent(flow, 0, None)
        if record is not None:
            topic = record.topic
            attributes: Attributes = {
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
            }
        else:
            topic, attributes = node.cmd_topic, {}
        span = RecordedSpan(
            self._ended,
            f"process {topic}",
            SpanKind.CONSUMER,
            parent.trace_id,
            {
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": topic,
                "messaging.consumer.group.name": self.consumer_group,
                "messaging.message.id": str(envelope.envelope_id),
                "messaging.message.conversation_id": str(envelope.correlation_id),
                "onex.node_id": node.node_id,
                "onex.tenant_id": envelope.tenant_id,
                "onex.envelope.type": envelope.type.value,
                **attributes,
            },
            parent_id=parent.span_id or None,
            parent_remote=True,
            trace_state=parent.trace_state,
        )
        kept = {k: v for k, v in headers.items() if k not in TRACE_HEADERS}
        envelope = envelope.model_copy(update={"headers": {**kept, **_context_headers(span)}})
        return envelope, _EnvelopeSpan(span)

    def handling(
        self, node: HostedNode, spans: Sequence[object]
    ) -> AbstractContextManager[_HandlerSpan | None]:
        """Open the span of one handler call (see ``runtime.Tracer.handling``)."""
        ours = [s for s in spans if isinstance(s, _EnvelopeSpan)]
        if not ours:
            return nullcontext()
        return self._handling(node, ours)

    @contextmanager
    def _handling(self, node: HostedNode, spans: list[_EnvelopeSpan]) -> Iterator[_HandlerSpan]:
        call = self._calls.get(node.node_id)
        if call is None:
            call = self._calls[node.node_id] = call_of(node)
        first = spans[0].span
        attributes: Attributes = dict(call.attributes)
        attributes["onex.batch.size"] = len(spans)
        span = RecordedSpan(
            self._ended,
            call.name,
            call.kind,
            first.trace_id,
            attributes,
            parent_id=first.span_id,
            trace_state=first.trace_state,
            links=[(s.span.trace_id, s.span.span_id) for s in spans[1:]],
        )
        try:
            yield _HandlerSpan(span, node)
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            span.end()

    def produce(self, envelope: OnexEnvelope, topic: str) -> OnexEnvelope:
        """Record ``envelope``'s creation for ``topic`` (see ``runtime.Tracer.produce``)."""
        headers = envelope.headers
        traceparent = headers.get("traceparent")
        if traceparent is None or not traceparent.endswith(_SAMPLED_FLAGS):
            return envelope  # not sampled (or not traced): nothing recorded, nothing changed
        parent = _parent_in(headers)
        if parent is None:
            return envelope  # a context no one can continue: left as it came
        span = RecordedSpan(
            self._ended,
            f"create {topic}",
            SpanKind.PRODUCER,
            parent.trace_id,
            {
                "messaging.system": "kafka",
                "messaging.operation.type": "create",
                "messaging.destination.name": topic,
                "messaging.message.id": str(envelope.envelope_id),
            },
            parent_id=parent.span_id,
            parent_remote=True,
            trace_state=parent.trace_state,
        )
        span.end()
        return envelope.model_copy(update={"headers": {**headers, **_context_headers(span)}})

    def transaction_aborted(self, reason: str, records: int) -> None:
        """Record an aborted transaction as a failed span of its own (sampled at the ratio)."""
        trace_id = random.getrandbits(128) or 1
        if not flow_sampled(trace_id, self.bound):
            return
        attributes: dict[str, AttributeValue] = {
            "onex.outputs_voided": records,
            "messaging.system": "kafka",
        }
        span = RecordedSpan(
            self._ended, "onex.transaction abort", SpanKind.INTERNAL, trace_id, attributes
        )
        span.set_error(reason)
        span.end()


@contextmanager
def open_tracer(
    *,
    endpoint: str,
    sampler_ratio: float,
    resource: Mapping[str, str],
    consumer_group: str,
    headers: Mapping[str, str] | None = None,
    exporter: SpanExporter | None = None,
) -> Iterator[OtelTracer]:
    """Yield a tracer exporting to ``endpoint`` (OTLP/HTTP); export what is left after.

    ``exporter`` replaces the export process (tests read spans back from memory with it).
    """
    with open_span_shipper(
        endpoint=endpoint, resource=resource, headers=headers, exporter=exporter
    ) as shipper:
        yield OtelTracer(shipper, sampler_ratio, consumer_group)
