"""Envelopes encoded by msgspec against pydantic's serializer, which wrote them before.

The rule (core/_codec.py): the same bytes, but for a float's positive exponent
(``1e20`` against pydantic's ``1e+20``); what msgspec cannot write, pydantic writes or
refuses as before. msgspec writes the fields in the order an envelope holds them, so
every builder must hold them in their declared order.
"""

from __future__ import annotations

import ast
import re
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from pydantic_core import PydanticSerializationError
from tests.strategies import envelopes

from onex_actors.core import (
    ErrorInfo,
    OnexEnvelope,
    dead_letter_of,
    decode_envelope,
    encode_envelope,
    error_result_of,
    event_command,
    intent_command,
    log_envelope,
    new_command,
    pure_result_of,
    result_of,
)
from onex_actors.core._wire import _WireEnvelope

_EXPONENT = re.compile(rb"(?<=[0-9]e)\+")


def pydantics(envelope: OnexEnvelope) -> bytes:
    """What the envelope's bytes were before: pydantic's serializer, exponents unsigned."""
    return _EXPONENT.sub(b"", envelope.__pydantic_serializer__.to_json(envelope))


@given(envelopes())
def test_any_envelope_encodes_as_pydantic_wrote_it(envelope: OnexEnvelope) -> None:
    assert encode_envelope(envelope) == pydantics(envelope)


def test_a_large_float_is_written_without_the_plus() -> None:
    command = new_command("echo-node", {"big": 1e20, "small": 1e-7})
    raw = encode_envelope(command)
    assert b'"big":1e20' in raw
    assert b'"small":1e-7' in raw
    assert decode_envelope(raw).payload == {"big": 1e20, "small": 1e-7}


def _every_builder() -> dict[str, OnexEnvelope]:
    cause = new_command("echo-node", {"k": "a"}, headers={"traceparent": "00-x"})
    error = ErrorInfo(type="boom", message="it broke", retryable=True, attempts=3)
    answer = result_of(cause, {"echo": True})
    return {
        "new_command": cause,
        "result_of": answer,
        "error_result_of": error_result_of(cause, error),
        "dead_letter_of": dead_letter_of(cause, error, source={"topic": "t", "offset": 7}),
        "log_envelope": log_envelope("runtime-a", "started", {"nodes": 1}),
        "pure_result_of": pure_result_of(cause, {"n": 1}, contract_id="tally@0.1.0"),
        "intent_command": intent_command(cause, "other-node", {"n": 1}, 0),
        "event_command": event_command("tally", answer),
        "decoded": decode_envelope(encode_envelope(cause)),
        "decoded_error": decode_envelope(encode_envelope(error_result_of(cause, error))),
        "copied": cause.model_copy(update={"headers": {"partition_key": "k"}}),
    }


@pytest.mark.parametrize("builder", sorted(_every_builder()))
def test_every_builder_holds_the_fields_in_their_declared_order(builder: str) -> None:
    envelope = _every_builder()[builder]
    assert tuple(envelope.__dict__) == tuple(OnexEnvelope.model_fields)
    assert encode_envelope(envelope) == pydantics(envelope)


def test_every_assembled_envelope_names_its_fields_in_their_declared_order() -> None:
    # read from the source, so a builder added later is checked too
    source = Path(__file__).resolve().parents[2] / "src" / "onex_actors"
    calls = [
        (path.name, node)
        for path in sorted(source.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "assembled"
    ]
    assert len(calls) >= 7, "the builders that use assembled() were not found"
    for name, call in calls:
        (fields,) = call.args
        if name == "_wire.py":  # the decoded fields, in the order of _WireEnvelope's
            assert tuple(_WireEnvelope.__struct_fields__) == tuple(OnexEnvelope.model_fields)
            continue
        assert isinstance(fields, ast.Dict), f"{name}:{call.lineno}: give a dict literal"
        keys = tuple(getattr(key, "value", None) for key in fields.keys)
        assert keys == tuple(OnexEnvelope.model_fields), f"{name}:{call.lineno}: {keys}"


def test_an_error_object_is_written_with_its_fields() -> None:
    cause = new_command("echo-node", {"k": "a"})
    failed = error_result_of(cause, ErrorInfo(type="boom", message="no", attempts=2))
    raw = encode_envelope(failed)
    assert b'"error":{"type":"boom","message":"no","retryable":false,"attempts":2}' in raw


def test_what_msgspec_cannot_write_pydantic_refuses_as_before() -> None:
    # a lone surrogate is no UTF-8: both refuse it, and the error is pydantic's, as before
    command = new_command("echo-node", {"k": "a"})
    broken = command.model_copy(update={"payload": {"s": "\ud800"}})
    with pytest.raises(PydanticSerializationError, match="surrogates not allowed"):
        encode_envelope(broken)


def test_an_id_is_written_as_its_canonical_text() -> None:
    envelope_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    command = new_command("echo-node", {"k": "a"}, envelope_id=envelope_id)
    assert b'"envelope_id":"12345678-1234-5678-1234-567812345678"' in encode_envelope(command)
