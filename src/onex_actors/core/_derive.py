"""Building envelopes: new commands, and the events, dead letters and logs they cause.

Derived envelopes keep the cause's ``correlation_id`` and ``tenant_id`` and set
``causation_id`` to the cause's ``envelope_id`` (SPEC §6, "Flow").
"""

from __future__ import annotations

import base64
import functools
import hashlib
import random
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from pydantic import JsonValue

from ._as_text import uuid_bytes
from ._envelope import (
    GLOBAL_TENANT,
    EnvelopeStatus,
    EnvelopeType,
    ErrorInfo,
    OnexEnvelope,
    assembled,
)
from ._errors import HandlerError
from ._ids import check_contract_id, check_slug
from ._json_object import JSON_OBJECT
from ._jsonpath import JsonPath
from ._uuid5 import uuid5

if TYPE_CHECKING:
    from ._contracts import ThenCommand

__all__ = [
    "EVENT_OF_HEADER",
    "HOPS_HEADER",
    "INSTANCE_HEADER",
    "PARTITION_KEY_HEADER",
    "TRACE_HEADERS",
    "dead_letter_of",
    "dead_letter_of_record",
    "error_result_of",
    "event_command",
    "hops_of",
    "intent_command",
    "log_envelope",
    "new_command",
    "new_envelope_id",
    "pure_result_of",
    "record_headers",
    "record_key",
    "record_key_and_headers",
    "result_of",
    "trace_context",
]

PARTITION_KEY_HEADER = "partition_key"

INSTANCE_HEADER: Final = "onex-instance"
"""On the commands of a workflow instance started by another workflow's step, and on
their results: the instance's id (a top-level instance's is its ``correlation_id``)."""

_TYPE_BYTES: Final = {kind: kind.value.encode() for kind in EnvelopeType}


_PRIVATE_BITS: Final = random.Random()  # seeded from the OS when created
_VERSION_MASK: Final = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_VERSION_4: Final = (0x8000 << 48) | (4 << 76)  # RFC 4122 variant, version 4
_UNKNOWN_SAFETY: Final = uuid.SafeUUID.unknown


def new_envelope_id() -> uuid.UUID:
    """Return a fresh random (version 4) envelope id.

    Not ``uuid.uuid4()``: its ``os.urandom`` is a system call that gives up the GIL and
    must win it back from the Kafka bridge's threads, which made it the costliest step of
    building a result on the host's event loop. Ids must be unique, not secret. The bits
    are those of a private generator XOR those of ``random``'s shared one: seeding the
    shared one (Hypothesis does, per example) cannot repeat ids, and a forked child,
    whose shared generator CPython reseeds, cannot repeat its parent's.
    """
    bits = _PRIVATE_BITS.getrandbits(128) ^ random.getrandbits(128)
    # what uuid.UUID(int=bits, version=4) does, without its checks and keyword handling
    envelope_id = object.__new__(uuid.UUID)
    object.__setattr__(envelope_id, "int", (bits & _VERSION_MASK) | _VERSION_4)
    object.__setattr__(envelope_id, "is_safe", _UNKNOWN_SAFETY)
    return envelope_id


def _now() -> datetime:
    return datetime.now(UTC)


def new_command(
    node_id: str,
    payload: Mapping[str, JsonValue],
    *,
    tenant_id: str = GLOBAL_TENANT,
    correlation_id: uuid.UUID | None = None,
    causation_id: uuid.UUID | None = None,
    contract_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    envelope_id: uuid.UUID | None = None,
    created_at: datetime | None = None,
) -> OnexEnvelope:
    """Build a ``cmd`` envelope addressed to ``node_id``; a fresh flow if no correlation id."""
    return OnexEnvelope(
        envelope_id=envelope_id or new_envelope_id(),
        type=EnvelopeType.CMD,
        tenant_id=tenant_id,
        node_id=node_id,
        contract_id=contract_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
        created_at=created_at or _now(),
        payload=JSON_OBJECT.validate_python(payload),
        headers=dict(headers or {}),
    )


def result_of(
    cause: OnexEnvelope,
    payload: Mapping[str, JsonValue],
    *,
    node_id: str | None = None,
    contract_id: str | None = None,
) -> OnexEnvelope:
    """Build the ``evt`` with ``status: ok`` that answers ``cause``.

    Built from parts already valid, without validating the whole envelope again: only
    ``payload`` is checked (unless it is the cause's own), and the ids where given.
    Raises ``pydantic.ValidationError`` for a payload that is not a JSON object.
    """
    if payload is not cause.payload:
        payload = JSON_OBJECT.validate_python(payload)
    return _derived(cause, EnvelopeType.EVT, payload, node_id, contract_id, EnvelopeStatus.OK, None)


def pure_result_of(
    cause: OnexEnvelope,
    payload: Mapping[str, JsonValue],
    *,
    contract_id: str,
    payload_is_json: bool = False,
) -> OnexEnvelope:
    """Build the ``ok`` result of a pure node: the same bytes each time ``cause`` is handled.

    Its id derives from the cause's and its time is the cause's (the record's time, not
    the wall clock), so a replayed command gives a byte-identical answer. ``payload`` is
    validated as a JSON object (``pydantic.ValidationError``) unless ``payload_is_json``
    says the core built it from JSON values only.
    """
    return assembled(
        {
            "envelope_id": uuid5(cause.envelope_id, "result"),
            "type": EnvelopeType.EVT,
            "tenant_id": cause.tenant_id,
            "node_id": cause.node_id,
            "contract_id": _checked(contract_id),
            "correlation_id": cause.correlation_id,
            "causation_id": cause.envelope_id,
            "created_at": cause.created_at,
            "payload": payload if payload_is_json else JSON_OBJECT.validate_python(payload),
            "status": EnvelopeStatus.OK,
            "error": None,
            "headers": _propagated(cause.headers) if cause.headers else {},
            "schema_version": 1,
        }
    )


def intent_command(
    cause: OnexEnvelope, node_id: str, payload: Mapping[str, JsonValue], index: int
) -> OnexEnvelope:
    """Build the command a reducer's ``index``-th intent sends to ``node_id`` for ``cause``.

    Deterministic like :func:`pure_result_of`: the node it goes to answers it once, however
    often the reducer handles ``cause``.
    """
    return assembled(
        {
            "envelope_id": uuid5(cause.envelope_id, f"intent:{index}:{node_id}"),
            "type": EnvelopeType.CMD,
            "tenant_id": cause.tenant_id,
            "node_id": check_slug(node_id),
            "contract_id": None,
            "correlation_id": cause.correlation_id,
            "causation_id": cause.envelope_id,
            "created_at": cause.created_at,
            "payload": JSON_OBJECT.validate_python(payload),
            "status": None,
            "error": None,
            "headers": _propagated(cause.headers) if cause.headers else {},
            "schema_version": 1,
        }
    )


HOPS_HEADER: Final = "onex-hops"
"""How many ``then:`` forwards led to a command (absent on a command sent from outside)."""


def hops_of(headers: Mapping[str, str]) -> int:
    """Return the hop count a command carries (0 when absent or not a count)."""
    raw = headers.get(HOPS_HEADER, "")
    return int(raw) if raw.isdigit() else 0


def forwarded_command(
    cause: OnexEnvelope, result: Mapping[str, JsonValue], then: ThenCommand
) -> OnexEnvelope:
    """Build the command ``then`` sends to its node after ``cause`` was answered ``result``.

    The payload is read by ``then``'s paths from ``{"command": cause, "result": result}``
    (``MissingValue`` names a path that finds nothing). The envelope id is derived from
    the cause's, so handling ``cause`` twice forwards the same command. It carries one
    hop more than ``cause``; past ``then.max_hops`` it is not built: ``HandlerError``
    (``loop``), for a loop that only shows at run time.
    """
    hops = hops_of(cause.headers) + 1
    if hops > then.max_hops:
        raise HandlerError(
            f"command {cause.envelope_id} reached {cause.node_id!r} after {hops - 1} "
            f"forwards of its flow (correlation id {cause.correlation_id}); forwarding it to "
            f"{then.node_id!r} would pass then.max_hops ({then.max_hops}): a loop? Not "
            "forwarded",
            error_type="loop",
            retryable=False,
        )
    document: dict[str, JsonValue] = {
        "command": cause.model_dump(mode="json"),
        "result": dict(result),
    }
    payload = {name: JsonPath(path).resolve(document) for name, path in then.payload.items()}
    return assembled(
        {
            "envelope_id": uuid5(cause.envelope_id, f"then:{then.node_id}"),
            "type": EnvelopeType.CMD,
            "tenant_id": cause.tenant_id,
            "node_id": then.node_id,
            "contract_id": None,
            "correlation_id": cause.correlation_id,
            "causation_id": cause.envelope_id,
            "created_at": _now(),
            "payload": payload,
            "status": None,
            "error": None,
            "headers": {**_propagated(cause.headers), HOPS_HEADER: str(hops)},
            "schema_version": 1,
        }
    )


def error_result_of(
    cause: OnexEnvelope,
    error: ErrorInfo,
    *,
    node_id: str | None = None,
    contract_id: str | None = None,
) -> OnexEnvelope:
    """Build the ``evt`` with ``status: error`` that reports ``cause`` failed."""
    return _derived(cause, EnvelopeType.EVT, {}, node_id, contract_id, EnvelopeStatus.ERROR, error)


def dead_letter_of(
    cause: OnexEnvelope,
    error: ErrorInfo,
    *,
    node_id: str | None = None,
    contract_id: str | None = None,
    source: Mapping[str, JsonValue] | None = None,
    max_envelope_bytes: int | None = None,
) -> OnexEnvelope:
    """Build the ``dlq`` copy of ``cause``: the envelope itself and ``source`` (topic, offset...).

    With ``max_envelope_bytes``, a cause too large to embed whole is kept as truncated
    raw JSON with its size and SHA-256, so the dead letter always fits the limit.
    """
    payload: dict[str, JsonValue]
    raw = cause.__pydantic_serializer__.to_json(cause)
    if max_envelope_bytes is not None and len(raw) > max_envelope_bytes // 2:
        payload = _raw_fields(raw, max_envelope_bytes // 8)
    else:
        payload = {"envelope": cause.model_dump(mode="json")}
    if source:
        payload["source"] = dict(source)
    return _derived(cause, EnvelopeType.DLQ, payload, node_id, contract_id, None, error)


def dead_letter_of_record(
    node_id: str,
    value: bytes | None,
    error: ErrorInfo,
    *,
    source: Mapping[str, JsonValue] | None = None,
    max_raw_bytes: int = 64 * 1024,
) -> OnexEnvelope:
    """Build the ``dlq`` envelope of a record that is not an envelope at all.

    The raw value is kept as text when it is UTF-8, else base64 (``null`` for a record
    with no value); past ``max_raw_bytes`` it is truncated, and its size and SHA-256
    always identify the original. JSON
    escaping can grow text up to six times, so ``max_raw_bytes`` of an eighth of the
    envelope limit always fits.
    """
    payload = _raw_fields(value, max_raw_bytes)
    if source:
        payload["source"] = dict(source)
    envelope_id = new_envelope_id()
    return OnexEnvelope(
        envelope_id=envelope_id,
        type=EnvelopeType.DLQ,
        node_id=node_id,
        correlation_id=envelope_id,
        created_at=_now(),
        payload=payload,
        error=error,
    )


def log_envelope(
    runtime_id: str,
    event: str,
    details: Mapping[str, JsonValue] | None = None,
    *,
    correlation_id: uuid.UUID | None = None,
) -> OnexEnvelope:
    """Build a runtime ``log`` envelope: ``payload = {"event": event, **details}``."""
    return OnexEnvelope(
        envelope_id=new_envelope_id(),
        type=EnvelopeType.LOG,
        node_id=runtime_id,
        correlation_id=correlation_id,
        created_at=_now(),
        payload={"event": event, **(details or {})},
    )


def record_key(envelope: OnexEnvelope) -> bytes:
    """Kafka record key: the ``partition_key`` header if set, else the correlation id."""
    key = envelope.headers.get(PARTITION_KEY_HEADER)
    return key.encode() if key is not None else uuid_bytes(envelope.correlation_id)


TRACE_HEADERS: Final = ("traceparent", "tracestate")
"""The W3C trace context headers an envelope carries on to what it causes."""


def trace_context(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the trace context headers among ``headers``."""
    return {k: headers[k] for k in TRACE_HEADERS if k in headers}


def record_headers(envelope: OnexEnvelope) -> list[tuple[str, bytes]]:
    """Kafka record headers repeating the ids, type and trace context, for other tools."""
    return list(record_key_and_headers(envelope)[1])


def record_key_and_headers(
    envelope: OnexEnvelope,
) -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
    """:func:`record_key` and :func:`record_headers` at once (each id turned to text once)."""
    correlation = uuid_bytes(envelope.correlation_id)
    carried = envelope.headers
    key = carried.get(PARTITION_KEY_HEADER) if carried else None
    headers: tuple[tuple[str, bytes], ...] = (
        ("envelope_id", uuid_bytes(envelope.envelope_id)),
        ("correlation_id", correlation),
        ("type", _TYPE_BYTES[envelope.type]),
    )
    if carried and "traceparent" in carried:  # W3C trace context, as Kafka tracing expects
        headers += tuple((k, carried[k].encode()) for k in TRACE_HEADERS if k in carried)
    return (correlation if key is None else key.encode()), headers


def _derived(
    cause: OnexEnvelope,
    kind: EnvelopeType,
    payload: Mapping[str, JsonValue],
    node_id: str | None,
    contract_id: str | None,
    status: EnvelopeStatus | None,
    error: ErrorInfo | None,
) -> OnexEnvelope:
    """Build an envelope caused by ``cause`` from valid parts (no second validation).

    ``payload`` is built here from JSON values; ids given by the caller are checked.
    """
    return assembled(
        {
            "envelope_id": new_envelope_id(),
            "type": kind,
            "tenant_id": cause.tenant_id,
            "node_id": cause.node_id if node_id is None else check_slug(node_id),
            "contract_id": cause.contract_id if contract_id is None else _checked(contract_id),
            "correlation_id": cause.correlation_id,
            "causation_id": cause.envelope_id,
            "created_at": _now(),
            "payload": dict(payload),
            "status": status,
            "error": error,
            "headers": _propagated(cause.headers) if cause.headers else {},
            "schema_version": 1,
        }
    )


@functools.lru_cache(maxsize=256)
def _checked(contract_id: str) -> str:
    return check_contract_id(contract_id)


_PROPAGATED: Final = frozenset({"traceparent", "tracestate", PARTITION_KEY_HEADER, INSTANCE_HEADER})


def _propagated(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers a derived envelope inherits: trace context, partition key, workflow instance."""
    return {k: v for k, v in headers.items() if k in _PROPAGATED}


def _raw_fields(value: bytes | None, max_raw_bytes: int) -> dict[str, JsonValue]:
    if value is None:
        return {"raw": None, "raw_encoding": "none", "raw_size": 0, "truncated": False}
    kept = value[:max_raw_bytes]
    try:
        raw, encoding = kept.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        raw, encoding = base64.b64encode(kept).decode("ascii"), "base64"
    return {
        "raw": raw,
        "raw_encoding": encoding,
        "raw_size": len(value),
        "raw_sha256": hashlib.sha256(value).hexdigest(),
        "truncated": len(value) > max_raw_bytes,
    }


EVENT_OF_HEADER: Final = "onex-event-of"
"""Marks a command made from another node's result event: that node's id."""


def event_command(node_id: str, event: OnexEnvelope) -> OnexEnvelope:
    """Build the command that brings ``event`` (another node's result) to reducer ``node_id``.

    Its payload is the event's; its id derives from the event's and the reducer's, so an
    event read again gives the same command (folded once); its time is the event's, its
    cause the event, its flow the event's. The header ``onex-event-of`` names the node the
    event came from.
    """
    return new_command(
        node_id,
        event.payload,
        tenant_id=event.tenant_id,
        envelope_id=uuid5(event.envelope_id, f"event-of/{node_id}"),
        correlation_id=event.correlation_id,
        causation_id=event.envelope_id,
        created_at=event.created_at,
        headers={
            **trace_context(event.headers),
            EVENT_OF_HEADER: event.node_id,
        },
    )
