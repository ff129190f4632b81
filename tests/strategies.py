"""Hypothesis strategies for envelopes, topics and topic patterns."""

from __future__ import annotations

import string
import uuid
from datetime import UTC, datetime

from hypothesis import strategies as st

from onex_actors.core import EnvelopeStatus, EnvelopeType, ErrorInfo, OnexEnvelope, Topic

_ALNUM = string.ascii_lowercase + string.digits


@st.composite
def slugs(draw: st.DrawFn, max_size: int = 63) -> str:
    if draw(st.booleans()):
        return draw(st.text(_ALNUM, min_size=1, max_size=1))
    middle = draw(st.text(_ALNUM + "-", max_size=max_size - 2))
    return draw(st.sampled_from(_ALNUM)) + middle + draw(st.sampled_from(_ALNUM))


json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
payloads = st.dictionaries(st.text(max_size=10), json_values, max_size=5)
datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
errors = st.builds(
    ErrorInfo,
    type=st.text(string.ascii_letters + "_", min_size=1, max_size=20),
    message=st.text(max_size=40),
    retryable=st.booleans(),
    attempts=st.integers(0, 20),
)


@st.composite
def envelopes(draw: st.DrawFn) -> OnexEnvelope:
    kind = draw(st.sampled_from(EnvelopeType))
    status = None
    error = None
    if kind is EnvelopeType.EVT:
        status = draw(st.sampled_from(EnvelopeStatus))
        if status is EnvelopeStatus.ERROR:
            error = draw(errors)
    elif kind is EnvelopeType.DLQ:
        error = draw(errors)
    node = draw(slugs())
    return OnexEnvelope(
        envelope_id=draw(st.uuids()),
        type=kind,
        tenant_id=draw(st.just("global") | slugs()),
        node_id=node,
        contract_id=draw(st.none() | st.just(f"{node}@1.2.3")),
        correlation_id=draw(st.uuids()),
        causation_id=draw(st.none() | st.uuids()),
        created_at=draw(datetimes),
        payload=draw(payloads),
        status=status,
        error=error,
        headers=draw(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)),
    )


topics = st.builds(
    Topic,
    plane=st.sampled_from(["app", "sys"]),
    env=slugs(max_size=10),
    tenant=slugs(max_size=10),
    type=st.sampled_from(["cmd", "evt", "log", "dlq"]),
    target=slugs(max_size=10),
    slug=slugs(max_size=20),
    version=st.integers(1, 999_999),
)

_SMALL_SEGMENTS = st.sampled_from(["a", "b", "cmd", "node"])
small_topics = st.lists(_SMALL_SEGMENTS, min_size=1, max_size=5).map(".".join)


@st.composite
def small_patterns(draw: st.DrawFn) -> str:
    segments = draw(st.lists(_SMALL_SEGMENTS | st.just("*"), min_size=1, max_size=5))
    if draw(st.booleans()):
        segments.append("#")
    return ".".join(segments)


def a_uuid() -> uuid.UUID:
    return uuid.uuid4()
