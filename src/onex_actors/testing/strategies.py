"""Hypothesis strategies for records a host must survive: bytes, broken and odd envelopes.

Needs ``hypothesis`` (part of the ``dev`` extra). :func:`malformed_record_values` mixes
arbitrary bytes, JSON that is not an envelope, envelopes with one field broken, and
valid envelopes for nodes nobody hosts or with exotic payloads; a host fed any of them
must answer each with a result or a dead letter and keep running.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

__all__ = ["malformed_record_values", "sample"]

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

_FIELDS = [
    "envelope_id",
    "type",
    "tenant_id",
    "node_id",
    "correlation_id",
    "created_at",
    "payload",
    "status",
    "schema_version",
]


def _envelope_json(node_id: str) -> dict[str, Any]:
    # uuid4, not new_command: its ids come from ``random``, which Hypothesis seeds per
    # example (repeating them), and the checker tells records apart by envelope id.
    envelope_id = str(uuid.uuid4())
    return {
        "envelope_id": envelope_id,
        "type": "cmd",
        "tenant_id": "global",
        "node_id": node_id,
        "correlation_id": envelope_id,
        "created_at": "2026-11-25T00:00:00Z",
        "payload": {"fuzz": True},
        "headers": {},
        "schema_version": 1,
    }


@st.composite
def _broken_envelope(draw: st.DrawFn, node_id: str) -> bytes:
    data = _envelope_json(node_id)
    field = draw(st.sampled_from(_FIELDS))
    if draw(st.booleans()):
        data.pop(field, None)
    else:
        data[field] = draw(_JSON)
    return json.dumps(data).encode()


@st.composite
def _odd_envelope(draw: st.DrawFn, node_id: str) -> bytes:
    data = _envelope_json(node_id)
    data["payload"] = draw(st.dictionaries(st.text(max_size=8), _JSON, max_size=4))
    data["node_id"] = draw(st.sampled_from([node_id, "nobody-hosts-this", node_id]))
    data["tenant_id"] = draw(st.sampled_from(["global", "global", "other-tenant"]))
    return json.dumps(data).encode()


def malformed_record_values(node_id: str) -> st.SearchStrategy[bytes]:
    """Record values for ``node_id``'s command topic that test a host's input handling."""
    return st.one_of(
        st.binary(max_size=512),
        _JSON.map(lambda value: json.dumps(value).encode()),
        _broken_envelope(node_id),
        _odd_envelope(node_id),
    )


def sample(strategy: st.SearchStrategy[bytes], count: int, seed: int = 0) -> list[bytes]:
    """Draw ``count`` examples of ``strategy`` reproducibly (outside a test)."""
    drawn: list[bytes] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=seed == 0,
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(value: bytes) -> None:
        drawn.append(value)

    collect()
    return drawn[:count]
