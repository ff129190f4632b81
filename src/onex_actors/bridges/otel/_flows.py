"""A flow's trace id is its correlation id, and its sampling decision follows from it.

Every hop of a flow carries the same ``correlation_id``, so a hop that gets no
``traceparent`` (the flow was not sampled where it started, or nobody traced it yet)
reaches the same decision as every other hop by itself, without any header, and a
sampled flow's trace is found in the receiver by its correlation id (the trace id is
the id's 32 hex digits). The decision hashes the whole id, so ids that are not random
in their low bits (version 1, 5...) sample at the ratio too.
"""

from __future__ import annotations

__all__ = ["flow_bound", "flow_sampled"]

_LOW_64 = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15


def flow_bound(ratio: float) -> int:
    """Return the bound :func:`flow_sampled` compares against to sample ``ratio`` of flows."""
    return round(ratio * (1 << 64))


def flow_sampled(trace_id: int, bound: int) -> bool:
    """Whether the flow of ``trace_id`` is sampled at ``bound`` (see :func:`flow_bound`)."""
    return (((trace_id ^ (trace_id >> 64)) * _MIX) & _LOW_64) < bound
