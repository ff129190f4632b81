"""Encoding envelopes to record values and decoding them back, with a size limit."""

from __future__ import annotations

from typing import Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ._envelope import OnexEnvelope
from ._errors import EnvelopeError

__all__ = ["DEFAULT_MAX_ENVELOPE_BYTES", "decode_envelope", "encode_envelope"]

DEFAULT_MAX_ENVELOPE_BYTES: Final = 1024 * 1024
"""Default limit on an encoded envelope (1 MiB); configurable per runtime."""

_FIELDS: Final = ", ".join(OnexEnvelope.model_fields)


def encode_envelope(
    envelope: OnexEnvelope, *, max_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES
) -> bytes:
    """Encode ``envelope`` as compact UTF-8 JSON; raise ``EnvelopeError`` past ``max_bytes``."""
    raw = envelope.__pydantic_serializer__.to_json(envelope)
    if len(raw) > max_bytes:
        raise EnvelopeError(
            f"envelope {envelope.envelope_id} is {len(raw)} bytes, over the limit of "
            f"{max_bytes} bytes: send large data by reference, or raise max_envelope_bytes",
            reason="oversize",
        )
    return raw


def decode_envelope(
    raw: bytes | str,
    *,
    max_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
    source: str | None = None,
) -> OnexEnvelope:
    """Decode a record value into an envelope.

    Raises ``EnvelopeError`` naming what is wrong and, when given, ``source``
    (for example ``topic onex.app.local.global.cmd.node.echo-node.v1 partition 0 offset 7``).
    """
    where = f" (at {source})" if source else ""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode())
    if size > max_bytes:
        raise EnvelopeError(
            f"record{where} is {size} bytes, over the envelope limit of {max_bytes} bytes",
            reason="oversize",
        )
    try:
        return OnexEnvelope.model_validate_json(raw)
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


def _describe(error: ErrorDetails) -> str:
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown field {location!r} (v1 envelopes have: {_FIELDS})"
    if error["type"] == "missing":
        return f"missing field {location!r}"
    if error["type"] == "model_type":
        return "the record must be a JSON object"
    message = error["msg"].removeprefix("Value error, ")
    return f"field {location!r}: {message}" if location else message
