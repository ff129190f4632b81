"""A flow's trace id is its correlation id, and its sampling decision follows from it.

Every hop of a flow carries the same ``correlation_id``, so a hop that gets no
``traceparent`` (the flow was not sampled where it started, or nobody traced it yet)
reaches the same decision as every other hop by itself, without any header, and a
sampled flow's trace is found in the receiver by its correlation id (the trace id is
the id's 32 hex digits). The decision hashes the whole id, so ids that are not random
in their low bits (version 1, 5...) sample at the ratio too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

__all__ = ["FlowIds", "FlowRatio", "flow_sampled"]

_LOW_64 = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15


def flow_sampled(trace_id: int, bound: int) -> bool:
    """Whether the flow of ``trace_id`` is sampled at ``bound`` (ratio x 2^64)."""
    return (((trace_id ^ (trace_id >> 64)) * _MIX) & _LOW_64) < bound


class FlowRatio(Sampler):
    """Samples a root span when :func:`flow_sampled` says its trace's flow is."""

    def __init__(self, ratio: float) -> None:
        self.bound = round(ratio * (1 << 64))

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """Sample the flow's spans, or none of them."""
        state = get_current_span(parent_context).get_span_context().trace_state
        if flow_sampled(trace_id, self.bound):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)
        return SamplingResult(Decision.DROP, None, state)

    def get_description(self) -> str:
        """Name the sampler as the SDK's are named."""
        return f"FlowRatio{{{self.bound / (1 << 64):g}}}"


class FlowIds(IdGenerator):
    """Random span ids; a root span's trace id is the flow's, when one is pending."""

    def __init__(self) -> None:
        self.pending: int | None = None
        """The trace id the next root span takes (set just before it is started)."""

    def generate_span_id(self) -> int:
        """Return a random, valid span id."""
        span_id = random.getrandbits(64)
        while span_id == 0:
            span_id = random.getrandbits(64)
        return span_id

    def generate_trace_id(self) -> int:
        """Return the pending flow's id, else a random one."""
        pending, self.pending = self.pending, None
        if pending:
            return pending
        trace_id = random.getrandbits(128)
        while trace_id == 0:
            trace_id = random.getrandbits(128)
        return trace_id

    def is_trace_id_random(self) -> bool:
        """Say no: a correlation id need not be random (W3C's random flag stays off)."""
        return False
