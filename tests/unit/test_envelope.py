from __future__ import annotations

import json
import math
import random
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import JsonValue, ValidationError
from tests.strategies import envelopes, payloads

from onex_actors.core import (
    DEFAULT_MAX_ENVELOPE_BYTES,
    EnvelopeError,
    EnvelopeStatus,
    EnvelopeType,
    ErrorInfo,
    OnexEnvelope,
    dead_letter_of,
    dead_letter_of_record,
    decode_envelope,
    encode_envelope,
    error_result_of,
    log_envelope,
    new_command,
    new_envelope_id,
    pure_result_of,
    record_headers,
    record_key,
    result_of,
)


@given(payloads)
def test_a_pure_answer_built_from_json_values_encodes_the_same_unvalidated(
    payload: dict[str, JsonValue],
) -> None:
    """A reducer's answer skips the JSON check (its core builds it from JSON values)."""
    cause = new_command("tally", {"k": "a"})
    checked = pure_result_of(cause, payload, contract_id="tally@0.1.0")
    trusted = pure_result_of(cause, payload, contract_id="tally@0.1.0", payload_is_json=True)
    assert encode_envelope(trusted) == encode_envelope(checked)


def valid_cmd_dict() -> dict[str, object]:
    return json.loads(encode_envelope(new_command("echo-node", {"hello": "world"})))


@given(envelopes())
def test_encode_decode_round_trips(envelope: OnexEnvelope) -> None:
    assert decode_envelope(encode_envelope(envelope)) == envelope


def test_command_without_correlation_takes_its_own_envelope_id() -> None:
    data = valid_cmd_dict()
    del data["correlation_id"]
    envelope = decode_envelope(json.dumps(data))
    assert envelope.correlation_id == envelope.envelope_id


def test_result_keeps_correlation_and_sets_causation() -> None:
    cmd = new_command("echo-node", {"a": 1}, headers={"traceparent": "00-x", "other": "y"})
    evt = result_of(cmd, {"a": 1})
    assert evt.type is EnvelopeType.EVT
    assert evt.status is EnvelopeStatus.OK
    assert evt.correlation_id == cmd.correlation_id
    assert evt.causation_id == cmd.envelope_id
    assert evt.envelope_id != cmd.envelope_id
    assert evt.headers == {"traceparent": "00-x"}


def test_error_result_and_dead_letter_carry_the_error() -> None:
    cmd = new_command("echo-node", {"a": 1})
    error = ErrorInfo(type="boom", message="it broke", retryable=False, attempts=3)
    evt = error_result_of(cmd, error)
    dlq = dead_letter_of(cmd, error, source={"topic": "t", "partition": 0, "offset": 7})
    assert evt.status is EnvelopeStatus.ERROR
    assert evt.error == error
    assert dlq.type is EnvelopeType.DLQ
    assert dlq.error == error
    assert dlq.causation_id == cmd.envelope_id
    assert dlq.payload["source"] == {"topic": "t", "partition": 0, "offset": 7}
    assert OnexEnvelope.model_validate(dlq.payload["envelope"]) == cmd


def test_log_envelope_names_its_event() -> None:
    log = log_envelope("runtime-dev", "started", {"nodes": ["echo-node"]})
    assert log.type is EnvelopeType.LOG
    assert log.payload == {"event": "started", "nodes": ["echo-node"]}


def test_record_key_prefers_partition_key_header() -> None:
    cmd = new_command("echo-node", {})
    assert record_key(cmd) == str(cmd.correlation_id).encode()
    keyed = new_command("echo-node", {}, headers={"partition_key": "user-7"})
    assert record_key(keyed) == b"user-7"
    assert dict(record_headers(cmd)) == {
        "envelope_id": str(cmd.envelope_id).encode(),
        "correlation_id": str(cmd.correlation_id).encode(),
        "type": b"cmd",
    }


def test_the_trace_context_is_repeated_in_the_kafka_headers() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    traced = new_command("echo-node", {}, headers={"traceparent": parent, "tracestate": "a=1"})
    headers = dict(record_headers(traced))
    assert (headers["traceparent"], headers["tracestate"]) == (parent.encode(), b"a=1")
    assert "traceparent" not in dict(record_headers(new_command("echo-node", {})))


def test_created_at_is_normalised_to_utc() -> None:
    data = valid_cmd_dict()
    data["created_at"] = "2026-01-01T12:00:00+02:00"
    envelope = decode_envelope(json.dumps(data))
    assert envelope.created_at.isoformat() == "2026-01-01T10:00:00+00:00"


@pytest.mark.parametrize(
    ("raw", "reason", "expected"),
    [
        (b"not json", "not_json", "is not a JSON envelope"),
        (b"\xff\xfe", "not_json", "is not a JSON envelope"),
        (b"[1, 2]", "schema", "must be a JSON object"),
    ],
)
def test_undecodable_records_are_named(raw: bytes, reason: str, expected: str) -> None:
    with pytest.raises(EnvelopeError, match=expected) as info:
        decode_envelope(raw, source="topic t partition 0 offset 3")
    assert info.value.reason == reason
    assert "topic t partition 0 offset 3" in str(info.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"surprise": 1}, "unknown field 'surprise'"),
        ({"envelope_id": "not-a-uuid"}, "field 'envelope_id'"),
        ({"payload": [1, 2]}, "field 'payload'"),
        ({"tenant_id": 7}, "field 'tenant_id'"),
        ({"node_id": "Echo_Node"}, "'Echo_Node' is not a valid slug"),
        ({"type": "command"}, "field 'type'"),
        ({"schema_version": 2}, "field 'schema_version'"),
        ({"created_at": "2026-01-01T00:00:00"}, "field 'created_at'"),
        ({"status": "ok"}, "'status' is for evt envelopes only"),
        ({"contract_id": "echo-node"}, "is not a contract id"),
    ],
)
def test_schema_errors_name_the_field(change: dict[str, object], expected: str) -> None:
    data = {**valid_cmd_dict(), **change}
    with pytest.raises(EnvelopeError, match="not a valid v1 envelope") as info:
        decode_envelope(json.dumps(data))
    assert expected in str(info.value)
    assert info.value.reason == "schema"


def test_missing_field_is_named() -> None:
    data = valid_cmd_dict()
    del data["node_id"]
    with pytest.raises(EnvelopeError, match="missing field 'node_id'"):
        decode_envelope(json.dumps(data))


def test_oversize_is_refused_both_ways() -> None:
    big = new_command("echo-node", {"blob": "x" * 2000})
    with pytest.raises(EnvelopeError, match="over the limit of 1000 bytes") as info:
        encode_envelope(big, max_bytes=1000)
    assert info.value.reason == "oversize"
    raw = encode_envelope(big)
    with pytest.raises(EnvelopeError, match="over the envelope limit") as info:
        decode_envelope(raw, max_bytes=1000)
    assert info.value.reason == "oversize"
    assert DEFAULT_MAX_ENVELOPE_BYTES == 1024 * 1024


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"type": "evt"}, "needs 'status'"),
        ({"type": "evt", "status": "error"}, "needs an 'error' object"),
        (
            {"type": "evt", "status": "ok", "error": {"type": "x", "message": "m"}},
            "must not carry an 'error'",
        ),
        ({"type": "dlq"}, "a dlq envelope needs an 'error'"),
        ({"type": "cmd", "error": {"type": "x", "message": "m"}}, "'error' is for evt and dlq"),
    ],
)
def test_status_and_error_rules(fields: dict[str, object], expected: str) -> None:
    base = {
        "envelope_id": uuid.uuid4(),
        "node_id": "echo-node",
        "created_at": "2026-01-01T00:00:00Z",
        "payload": {},
    }
    with pytest.raises(ValidationError, match=expected):
        OnexEnvelope.model_validate({**base, **fields})


def test_envelopes_are_frozen() -> None:
    cmd = new_command("echo-node", {})
    with pytest.raises(ValidationError):
        cmd.node_id = "other"  # type: ignore[misc]


@given(st.binary(max_size=5000), st.integers(1024, 4096))
def test_raw_dead_letter_always_fits_the_limit(value: bytes, limit: int) -> None:
    error = ErrorInfo(type="not_json", message="m")
    dlq = dead_letter_of_record("runtime-dev", value, error, max_raw_bytes=limit // 8)
    assert len(encode_envelope(dlq, max_bytes=limit + 512)) <= limit + 512
    assert dlq.payload["raw_size"] == len(value)
    assert dlq.payload["truncated"] == (len(value) > limit // 8)


def test_large_cause_is_kept_truncated_with_its_hash() -> None:
    big = new_command("echo-node", {"blob": "\u0001" * 3000})
    dlq = dead_letter_of(big, ErrorInfo(type="x", message="m"), max_envelope_bytes=4096)
    assert "envelope" not in dlq.payload
    assert dlq.payload["truncated"] is True
    assert len(encode_envelope(dlq, max_bytes=4096)) <= 4096


def test_envelope_ids_stay_unique_when_the_shared_random_generator_is_seeded() -> None:
    # Hypothesis and user code seed ``random``; ids built on it alone repeated (the fuzz
    # scenario's checker saw 12 "lost" and 12 "duplicated" commands).
    ids = set()
    for _ in range(50):
        random.seed(7)
        ids.add(new_envelope_id())
    assert len(ids) == 50
    assert all(i.version == 4 for i in ids)


def test_a_record_without_a_value_is_named() -> None:
    with pytest.raises(EnvelopeError, match="has no value") as info:
        decode_envelope(None, source="topic t partition 1 offset 9")
    assert info.value.reason == "no_value"
    assert "topic t partition 1 offset 9" in str(info.value)


@pytest.mark.parametrize(
    ("number", "path"),
    [
        ("NaN", "payload.n"),
        ("Infinity", "payload.n"),
        ("-Infinity", "payload.n"),
        ("1e400", "payload.n"),
        ("-1E999", "payload.n"),
        ('[1, {"deep": NaN}]', "payload.n[1].deep"),
    ],
)
def test_non_finite_numbers_are_not_json(number: str, path: str) -> None:
    raw = json.dumps(valid_cmd_dict()).replace('{"hello": "world"}', '{"n": ' + number + "}")
    with pytest.raises(EnvelopeError, match="are not JSON") as info:
        decode_envelope(raw)
    assert info.value.reason == "schema"
    assert f"field {path!r}" in str(info.value)


@pytest.mark.parametrize("text", ['"NaN"', '"1e400"', "1e308", "12345678901234567890123", "-0.0"])
def test_finite_numbers_and_look_alike_strings_pass(text: str) -> None:
    raw = json.dumps(valid_cmd_dict()).replace('{"hello": "world"}', '{"n": ' + text + "}")
    assert decode_envelope(raw).payload["n"] == json.loads(text)


@pytest.mark.parametrize("number", [math.inf, -math.inf, math.nan])
def test_a_payload_built_with_a_non_finite_number_is_refused_naming_the_field(
    number: float,
) -> None:
    """JSON cannot hold it: encoded, it would silently become null."""
    command = new_command("echo-node", {"n": 1})
    payload: dict[str, JsonValue] = {"ok": 1, "deep": [0.5, {"n": number}]}
    building = [
        lambda: new_command("echo-node", payload),
        lambda: result_of(command, payload),
        lambda: pure_result_of(command, payload, contract_id="c@1.0.0"),
    ]
    for build in building:
        with pytest.raises(ValidationError, match=r"'payload.deep\[1\].n' is NaN or infinite"):
            build()
    assert result_of(command, {"n": 1e308}).payload == {"n": 1e308}


def test_dead_letter_of_a_record_without_a_value() -> None:
    error = ErrorInfo(type="no_value", message="tombstone")
    letter = dead_letter_of_record("runtime-dev", None, error, source={"offset": 4})
    assert letter.payload["raw"] is None
    assert letter.payload["raw_size"] == 0
    assert letter.payload["source"] == {"offset": 4}
