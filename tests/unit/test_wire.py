"""The msgspec fast path of decoding against pydantic's, on anything Hypothesis finds.

The rule (core/_wire.py): the fast path may refuse what pydantic accepts (pydantic then
decides), never accept what pydantic refuses, and where both accept they build the same
envelope.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from onex_actors.core import OnexEnvelope, decode_envelope, encode_envelope, new_command
from onex_actors.core._wire import fast_decoded
from onex_actors.testing.strategies import malformed_record_values

IDS = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: str(u).upper()),
    st.text(max_size=40),
    st.integers(),
    st.none(),
)
SLUGS = st.one_of(
    st.sampled_from(["echo-node", "a", "echo-node\n", "Echo", "-x", "x-", "a" * 63, "a" * 64]),
    st.text(max_size=12),
    st.integers(),
)
TIMES = st.one_of(
    st.sampled_from(
        [
            "2026-11-25T00:00:00Z",
            "2026-11-25T00:00:00+05:30",
            "2026-11-25T00:00:00",
            "2026-11-25 00:00:00Z",
            "2026-11-25T00:00:00.123456789Z",
            "2026-11-25",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+01:00",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False),
)
VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
ERRORS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["boom", ""]), "message": st.text(max_size=5)},
        optional={
            "retryable": st.one_of(st.booleans(), st.sampled_from(["true", 1, 0])),
            "attempts": st.one_of(st.integers(-2, 5), st.sampled_from([1.0, "2"])),
            "extra": st.just(1),
        },
    ),
)


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    """An envelope with any field replaced by something near (or far from) valid."""
    envelope_id = str(uuid.uuid4())
    data: dict[str, Any] = {
        "envelope_id": envelope_id,
        "type": draw(st.sampled_from(["cmd", "evt", "log", "dlq", "CMD", "other"])),
        "tenant_id": "global",
        "node_id": "echo-node",
        "correlation_id": envelope_id,
        "created_at": "2026-11-25T00:00:00Z",
        "payload": {"i": 1},
        "headers": {},
        "schema_version": 1,
    }
    optional = {
        "envelope_id": IDS,
        "correlation_id": IDS,
        "causation_id": IDS,
        "tenant_id": SLUGS,
        "node_id": SLUGS,
        "contract_id": st.sampled_from([None, "echo-node@0.1.0", "echo-node@0.1", "x@1.0.0\n"]),
        "created_at": TIMES,
        "payload": st.one_of(st.dictionaries(st.text(max_size=4), VALUES, max_size=3), VALUES),
        "status": st.sampled_from([None, "ok", "error", "OK"]),
        "error": ERRORS,
        "headers": st.one_of(
            st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
            st.dictionaries(st.text(max_size=4), VALUES, max_size=2),
        ),
        "schema_version": st.sampled_from([1, 2, "1", 1.0, True]),
    }
    for field in draw(st.lists(st.sampled_from(sorted(optional)), max_size=4, unique=True)):
        if draw(st.booleans()) and field not in ("envelope_id",):
            data.pop(field, None)
        else:
            data[field] = draw(optional[field])
    if draw(st.booleans()):
        data["unknown"] = 1
    return json.dumps(data).encode()


def _slow(raw: bytes) -> OnexEnvelope | None:
    try:
        return OnexEnvelope.model_validate_json(raw)
    except ValidationError:
        return None


def _agrees(raw: bytes) -> None:
    fast = fast_decoded(raw)
    if fast is None:
        return
    slow = _slow(raw)
    assert slow is not None, f"the fast path accepted what pydantic refuses: {raw!r}"
    fast_fields, slow_fields = fast.model_dump(), slow.model_dump()
    # nanoseconds: msgspec rounds them to the microsecond, pydantic truncates
    gap = abs(fast_fields.pop("created_at") - slow_fields.pop("created_at"))
    assert gap.total_seconds() <= 1e-6
    assert fast_fields == slow_fields
    assert encode_envelope(fast) == encode_envelope(slow) or gap.total_seconds() > 0


@settings(max_examples=1500)
@given(envelopes())
def test_the_fast_path_never_accepts_what_pydantic_refuses(raw: bytes) -> None:
    _agrees(raw)


@settings(max_examples=500)
@given(malformed_record_values("echo-node"))
def test_the_fast_path_agrees_on_the_hostile_values_too(raw: bytes) -> None:
    _agrees(raw)


def test_a_well_formed_command_takes_the_fast_path() -> None:
    command = new_command("echo-node", {"i": 1}, headers={"partition_key": "k"})
    fast = fast_decoded(encode_envelope(command))
    assert fast == command
    assert decode_envelope(encode_envelope(command)) == command


@pytest.mark.parametrize(
    "change",
    [
        {"node_id": "echo-node\n"},  # a Python "$" would let it through
        {"created_at": "2026-11-25T00:00:00"},  # naive
        {"type": "evt"},  # an evt without status
        {"payload": {"n": 1e400}},
        {"payload": {"deep": [[[[]]]]}},  # replaced below by nesting past msgspec's depth
    ],
)
def test_what_the_fast_path_refuses_pydantic_words_as_before(change: dict[str, Any]) -> None:
    command = json.loads(encode_envelope(new_command("echo-node", {"i": 1})))
    raw = json.dumps({**command, **change}).encode()
    if "deep" in change.get("payload", {}):  # json.dumps cannot write 100,000 lists deep
        raw = raw.replace(b"[[[[]]]]", b"[" * 100_000 + b"]" * 100_000)
    assert fast_decoded(raw) is None


def test_ids_remembered_as_valid_are_remembered_per_pattern() -> None:
    # the fast path matches each distinct id once: a contract id it has accepted is
    # still no node id, and a tenant id it has accepted still no contract id
    command = json.loads(encode_envelope(new_command("echo-node", {"i": 1})))
    accepted = {**command, "tenant_id": "acme", "contract_id": "echo-node@0.1.0"}
    assert fast_decoded(json.dumps(accepted).encode()) is not None
    for change in ({"node_id": "echo-node@0.1.0"}, {"contract_id": "acme"}):
        raw = json.dumps({**accepted, **change}).encode()
        assert fast_decoded(raw) is None
        assert _slow(raw) is None
