"""Encoding envelopes to record values and decoding them back, with a size limit.

Decoding is strict JSON (RFC 8259): a record with no value (a tombstone), a value that
is not UTF-8 JSON, ``NaN``, ``Infinity`` or a number too large for a double
(``1e400``) is an ``EnvelopeError``, never an exception of another type. A well-formed
envelope is read by msgspec (``_wire``); anything it refuses is read, accepted or
refused in words, by pydantic, as before.
"""

from __future__ import annotations

from typing import Final

import msgspec
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ._envelope import ErrorInfo, OnexEnvelope
from ._errors import EnvelopeError
from ._ids import check_contract_id, check_slug
from ._json_object import has_non_finite, non_finite_path
from ._wire import fast_decoded

__all__ = ["DEFAULT_MAX_ENVELOPE_BYTES", "decode_envelope", "encode_envelope"]

DEFAULT_MAX_ENVELOPE_BYTES: Final = 1024 * 1024
"""Default limit on an encoded envelope (1 MiB); configurable per runtime."""

_FIELDS: Final = ", ".join(OnexEnvelope.model_fields)


def _error_fields(value: object) -> object:
    if type(value) is ErrorInfo:
        return value.__dict__
    raise NotImplementedError(f"{type(value).__name__} is not JSON")  # pydantic decides


_ENCODE: Final = msgspec.json.Encoder(enc_hook=_error_fields).encode


def encode_envelope(
    envelope: OnexEnvelope, *, max_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES
) -> bytes:
    """Encode ``envelope`` as compact UTF-8 JSON; raise ``EnvelopeError`` past ``max_bytes``."""
    try:  # its fields are in their declared order (validated, copied, or ``assembled``)
        raw = _ENCODE(envelope.__dict__)
    except (NotImplementedError, TypeError, ValueError, OverflowError):
        # a lone surrogate, a value that is not JSON: pydantic writes it or says why
        raw = envelope.__pydantic_serializer__.to_json(envelope)
    if len(raw) > max_bytes:
        raise EnvelopeError(
            f"envelope {envelope.envelope_id} is {len(raw)} bytes, over the limit of "
            f"{max_bytes} bytes: send large data by reference, or raise max_envelope_bytes",
            reason="oversize",
        )
    return raw


def decode_envelope(
    raw: bytes | str | None,
    *,
    max_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
    source: str | None = None,
) -> OnexEnvelope:
    """Decode a record value into an envelope.

    Raises ``EnvelopeError`` naming what is wrong and, when given, ``source``
    (for example ``topic onex.app.local.global.cmd.node.echo-node.v1 partition 0 offset 7``).
    """
    where = f" (at {source})" if source else ""
    if raw is None:
        raise EnvelopeError(
            f"record{where} has no value (a tombstone or a headers-only record): "
            "a command's value must be a JSON envelope",
            reason="no_value",
        )
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", errors="surrogatepass")
    if len(data) > max_bytes:
        raise EnvelopeError(
            f"record{where} is {len(data)} bytes, over the envelope limit of {max_bytes} bytes",
            reason="oversize",
        )
    envelope = fast_decoded(data)  # msgspec: never accepts what pydantic would refuse
    if envelope is not None:
        return envelope  # its numbers are finite: msgspec refuses NaN and 1e400
    try:
        envelope = OnexEnvelope.model_validate_json(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            detail = errors[0].get("ctx", {}).get("error", errors[0]["msg"])
            raise EnvelopeError(
                f"record{where} is not a JSON envelope: {detail}", reason="not_json"
            ) from None
        problems = "; ".join(_describe(e) for e in errors)
        raise EnvelopeError(
            f"record{where} is not a valid v1 envelope: {problems}", reason="schema"
        ) from None
    # pydantic's JSON parser accepts NaN and Infinity and turns 1e400 into inf
    if has_non_finite(envelope.payload):
        path = non_finite_path("payload", envelope.payload)
        if path is not None:
            raise EnvelopeError(
                f"record{where} is not a valid v1 envelope: field {path!r}: NaN, Infinity "
                "and numbers beyond a double's range (such as 1e400) are not JSON; "
                "send a finite number, or the value as a string",
                reason="schema",
            )
    return envelope


def _describe(error: ErrorDetails) -> str:
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown field {location!r} (v1 envelopes have: {_FIELDS})"
    if error["type"] == "missing":
        return f"missing field {location!r}"
    if error["type"] == "model_type":
        return "the record must be a JSON object"
    if error["type"] == "string_pattern_mismatch":
        return f"field {location!r}: {_id_problem(location, error['input'])}"
    message = error["msg"].removeprefix("Value error, ")
    return f"field {location!r}: {message}" if location else message


def _id_problem(field: str, value: object) -> str:
    """Why ``value`` is not a valid id for ``field``: the message the id checks give."""
    check = check_contract_id if field == "contract_id" else check_slug
    try:
        check(str(value))
    except ValueError as exc:
        return str(exc)
    return f"{value!r} is not valid here"
