"""Hypothesis strategies for records a host must survive: bytes, broken and odd envelopes.

Needs ``hypothesis`` (part of the ``dev`` extra). :func:`malformed_record_values` mixes
arbitrary bytes, JSON that is not an envelope, envelopes with one field broken, and
valid envelopes for nodes nobody hosts or with exotic payloads; a host fed any of them
must answer each with a result or a dead letter and keep running.

:func:`hostile_records` goes from values to whole records, as any Kafka producer may
write them: no value, headers only, odd keys and headers, every codec, sizes at and
around the envelope and producer limits, results larger than their commands, deep
nesting and numbers that are not JSON.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from ._workload import RawRecord

__all__ = ["hostile_records", "malformed_record_values", "sample"]

CODECS = (None, "gzip", "snappy", "lz4", "zstd")

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


def _sized(node_id: str, size: int) -> bytes:
    """Return a valid command for ``node_id`` encoded in exactly ``size`` bytes."""
    data = _envelope_json(node_id)
    data["payload"] = {"blob": ""}
    base = len(json.dumps(data, separators=(",", ":")))
    data["payload"] = {"blob": "x" * max(0, size - base)}
    return json.dumps(data, separators=(",", ":")).encode()


def _nested(node_id: str, depth: int) -> bytes:
    data = _envelope_json(node_id)
    data["payload"] = {"deep": 0}
    text = json.dumps(data)
    return text.replace('"deep": 0', '"deep": ' + "[" * depth + "1" + "]" * depth).encode()


def _with_number(node_id: str, number: str) -> bytes:
    text = json.dumps(_envelope_json(node_id))
    return text.replace('{"fuzz": true}', '{"n": ' + number + "}").encode()


def hostile_records(
    node_id: str, *, envelope_limit: int, producer_limit: int
) -> st.SearchStrategy[RawRecord]:
    """Whole records for ``node_id``'s command topic, from every corner Kafka allows.

    ``envelope_limit`` and ``producer_limit`` are the host's ``max_envelope_bytes`` and
    ``kafka.max_request_bytes``: sizes are drawn at and around both, and commands just
    under the envelope limit have results over the producer's.
    """
    sizes = [
        envelope_limit - 1,
        envelope_limit,
        envelope_limit + 1,
        producer_limit - 400,
        producer_limit - 100,
        producer_limit + 100,
    ]
    value = st.one_of(
        st.none(),
        malformed_record_values(node_id),
        st.just(node_id).map(lambda n: json.dumps(_envelope_json(n)).encode()),
        st.sampled_from(sizes).map(lambda size: _sized(node_id, size)),
        st.sampled_from([10, 150, 250, 5000]).map(lambda depth: _nested(node_id, depth)),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-0.0", "1" * 40]).map(
            lambda number: _with_number(node_id, number)
        ),
    )
    key = st.one_of(st.none(), st.just(b""), st.binary(max_size=16), st.just(b"\xff" * 10_000))
    header = st.tuples(
        st.text(max_size=12),
        # bytes only: kafka-python cannot write a null header value
        st.one_of(st.just(b""), st.binary(max_size=32), st.just(b"\x00\xff")),
    )
    return st.builds(
        RawRecord,
        value=value,
        key=key,
        headers=st.lists(header, max_size=6).map(tuple),
        codec=st.sampled_from(CODECS),
    ).map(_writable)


def _writable(record: RawRecord) -> RawRecord:
    # kafka-python refuses a record with neither key nor value (the protocol allows it;
    # a host reads it as any other record without a value): give it an empty key.
    if record.value is None and record.key is None:
        return RawRecord(None, b"", record.headers, record.codec)
    return record


T = TypeVar("T")


def sample(strategy: st.SearchStrategy[T], count: int, seed: int = 0) -> list[T]:
    """Draw ``count`` examples of ``strategy`` reproducibly (outside a test).

    The same ``seed`` draws the same examples (with the same Hypothesis version); another
    seed draws others. Hypothesis may stop early on a strategy with fewer examples.
    """
    drawn: list[T] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=seed == 0,
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(value: T) -> None:
        drawn.append(value)

    (collect if seed == 0 else hypothesis_seed(seed)(collect))()
    return drawn[:count]
