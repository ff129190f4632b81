"""``OtelTracer``: the runtime's ``Tracer`` on the OpenTelemetry SDK.

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
carries to the next hop. Spans are exported in batches from the SDK's own thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import JsonValue

from onex_actors.core import TRACE_HEADERS, HostedNode, OnexEnvelope
from onex_actors.runtime import Record

from ._flows import FlowIds, FlowRatio, flow_sampled
from ._spans import Call, answer_attributes, call_of

__all__ = ["OtelTracer", "open_tracer"]

logger = logging.getLogger("onex_actors.tracing")
_PROPAGATOR = TraceContextTextMapPropagator()
_ROOT = Context()
"""No parent: a flow's first span starts its trace."""
_SAMPLED_FLAGS = tuple(f"{flags:02x}" for flags in range(256) if flags & 1)
"""W3C trace flags with the sampled bit set (a ``traceparent`` ends with its flags)."""


class _EnvelopeSpan:
    """An envelope's consumer span (``runtime.EnvelopeSpan``)."""

    __slots__ = ("ended", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.ended = False

    def event(self, name: str, attributes: Mapping[str, str | int | float | bool]) -> None:
        self.span.add_event(f"onex.{name}", dict(attributes))

    def failed(self, error_type: str, message: str) -> None:
        self.span.add_event("onex.dead_letter", {"error.type": error_type})
        self.span.set_attribute("error.type", error_type)
        self.span.set_status(Status(StatusCode.ERROR, message))

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self.span.end()


class _HandlerSpan:
    """A handler call's span (``runtime.HandlerSpan``)."""

    __slots__ = ("node", "span")

    def __init__(self, span: Span, node: HostedNode) -> None:
        self.span = span
        self.node = node

    def answered(self, payload: Mapping[str, JsonValue]) -> None:
        attributes = answer_attributes(self.node, payload)
        if attributes:
            self.span.set_attributes(attributes)


class OtelTracer:
    """Starts the spans of one host's nodes (see the module)."""

    def __init__(
        self, provider: TracerProvider, ids: FlowIds, ratio: float, consumer_group: str
    ) -> None:
        self.provider = provider
        self.ids = ids
        self.bound = FlowRatio(ratio).bound
        self.consumer_group = consumer_group
        self._tracer = provider.get_tracer("onex_actors")
        self._calls: dict[str, Call] = {}

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
        if traceparent is None:
            # the flow's own decision, the same at every hop: no header needed for it
            flow = envelope.correlation_id.int
            if not flow_sampled(flow, self.bound):
                return envelope, None
            self.ids.pending = flow
            parent = _ROOT
        elif not traceparent.endswith(_SAMPLED_FLAGS):
            return envelope, None  # not sampled upstream: nothing recorded here either
        else:
            parent = _PROPAGATOR.extract(carrier)
        if record is not None:
            topic = record.topic
            attributes: dict[str, str | int | float | bool] = {
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
            }
        else:
            topic, attributes = node.cmd_topic, {}
        span = self._tracer.start_span(
            f"process {topic}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
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
        )
        self.ids.pending = None
        context: dict[str, str] = {}
        _PROPAGATOR.inject(context, set_span_in_context(span))
        kept = {k: v for k, v in headers.items() if k not in TRACE_HEADERS}
        envelope = envelope.model_copy(update={"headers": {**kept, **context}})
        return envelope, _EnvelopeSpan(span) if span.is_recording() else None

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
        links = [Link(s.span.get_span_context()) for s in spans[1:]]
        with self._tracer.start_as_current_span(
            call.name,
            context=set_span_in_context(spans[0].span),
            kind=call.kind,
            links=links,
            attributes={**call.attributes, "onex.batch.size": len(spans)},
        ) as span:
            yield _HandlerSpan(span, node)

    def produce(self, envelope: OnexEnvelope, topic: str) -> OnexEnvelope:
        """Record ``envelope``'s creation for ``topic`` (see ``runtime.Tracer.produce``)."""
        parent = envelope.headers.get("traceparent")
        if parent is None or not parent.endswith(_SAMPLED_FLAGS):
            return envelope  # not sampled (or not traced): nothing recorded, nothing changed
        span = self._tracer.start_span(
            f"create {topic}",
            context=_PROPAGATOR.extract(envelope.headers),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "create",
                "messaging.destination.name": topic,
                "messaging.message.id": str(envelope.envelope_id),
            },
        )
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, set_span_in_context(span))
        span.end()
        return envelope.model_copy(update={"headers": {**envelope.headers, **carrier}})

    def transaction_aborted(self, reason: str, records: int) -> None:
        """Record an aborted transaction as a failed span of its own."""
        span = self._tracer.start_span(
            "onex.transaction abort",
            kind=SpanKind.INTERNAL,
            attributes={"onex.outputs_voided": records, "messaging.system": "kafka"},
        )
        span.set_status(Status(StatusCode.ERROR, reason))
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
    """Yield a tracer exporting to ``endpoint`` (OTLP/HTTP); flush and stop it after.

    ``exporter`` replaces the OTLP one (tests read spans back from memory with it).
    """
    ids = FlowIds()
    provider = TracerProvider(
        resource=Resource.create(dict(resource)),
        sampler=ParentBased(FlowRatio(sampler_ratio)),
        id_generator=ids,
    )
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter
            if exporter is not None
            else OTLPSpanExporter(endpoint=endpoint, headers=dict(headers or {}), timeout=10)
        )
    )
    try:
        yield OtelTracer(provider, ids, sampler_ratio, consumer_group)
    finally:
        provider.shutdown()  # exports what is left (the processor's own timeout bounds it)
