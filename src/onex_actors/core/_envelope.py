"""The v1 envelope: the JSON object carried in every record's value (SPEC §3)."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Final, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    field_validator,
    model_validator,
)

from ._ids import CONTRACT_ID_PATTERN, SLUG_PATTERN

__all__ = [
    "GLOBAL_TENANT",
    "EnvelopeStatus",
    "EnvelopeType",
    "ErrorInfo",
    "OnexEnvelope",
]

GLOBAL_TENANT = "global"

# Checked inside pydantic-core (no Python call per envelope); the codec turns a mismatch
# into the same message ``check_slug`` and ``check_contract_id`` give.
_Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN.pattern)]
_ContractId = Annotated[str, StringConstraints(pattern=CONTRACT_ID_PATTERN.pattern)]


class EnvelopeType(enum.StrEnum):
    """What an envelope is: a command, a result event, a runtime log line or a dead letter."""

    CMD = "cmd"
    EVT = "evt"
    LOG = "log"
    DLQ = "dlq"


class EnvelopeStatus(enum.StrEnum):
    """Outcome carried by an ``evt`` envelope."""

    OK = "ok"
    ERROR = "error"


class ErrorInfo(BaseModel):
    """Why a command failed: carried by error events and dead letters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(min_length=1)
    message: str
    retryable: bool = False
    attempts: int = Field(default=1, ge=0)


class OnexEnvelope(BaseModel):
    """One v1 envelope. Frozen; unknown fields are rejected.

    A command without ``correlation_id`` gets its own ``envelope_id`` as one, so every
    envelope of a flow shares the correlation id of the command that started it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    envelope_id: uuid.UUID
    type: EnvelopeType
    tenant_id: _Slug = GLOBAL_TENANT
    node_id: _Slug
    contract_id: _ContractId | None = None
    if TYPE_CHECKING:
        correlation_id: uuid.UUID
    else:  # missing or null: the envelope's own id (set by the check below)
        correlation_id: uuid.UUID | None = None
    causation_id: uuid.UUID | None = None
    created_at: AwareDatetime
    payload: dict[str, JsonValue]
    status: EnvelopeStatus | None = None
    error: ErrorInfo | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    schema_version: Literal[1] = 1

    @field_validator("created_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _check_status_and_error(self) -> Self:
        if self.correlation_id is None:
            object.__setattr__(self, "correlation_id", self.envelope_id)
        if self.type is EnvelopeType.EVT:
            if self.status is None:
                raise ValueError("an evt envelope needs 'status': 'ok' or 'error'")
            if self.status is EnvelopeStatus.ERROR and self.error is None:
                raise ValueError("an evt with status 'error' needs an 'error' object")
            if self.status is EnvelopeStatus.OK and self.error is not None:
                raise ValueError("an evt with status 'ok' must not carry an 'error'")
        else:
            if self.status is not None:
                raise ValueError(f"'status' is for evt envelopes only, not {self.type.value}")
            if self.type is EnvelopeType.DLQ and self.error is None:
                raise ValueError("a dlq envelope needs an 'error' object saying why")
            if self.type is not EnvelopeType.DLQ and self.error is not None:
                raise ValueError(
                    f"'error' is for evt and dlq envelopes only, not {self.type.value}"
                )
        return self


_FIELD_NAMES: Final = frozenset(OnexEnvelope.model_fields)
_new: Final = object.__new__
# the slots' own setters: object.__setattr__ looks each name up along the class's MRO
_set_dict: Final = BaseModel.__dict__["__dict__"].__set__
_set_fields_set: Final = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra: Final = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private: Final = BaseModel.__dict__["__pydantic_private__"].__set__


def assembled(fields: dict[str, object]) -> OnexEnvelope:
    """Build an envelope from ``fields`` that are already valid, every one given, unchecked.

    What ``model_construct`` does, without its per-field work: for results built from
    a validated cause on the hot path. Callers own the validity of every value, and
    give the fields in their declared order: ``encode_envelope`` writes them as given.
    """
    envelope = _new(OnexEnvelope)
    _set_dict(envelope, fields)
    _set_fields_set(envelope, set(_FIELD_NAMES))
    _set_extra(envelope, None)
    _set_private(envelope, None)
    return envelope
