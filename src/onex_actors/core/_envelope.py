"""The v1 envelope: the JSON object carried in every record's value (SPEC §3)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

from ._ids import ContractId, NodeId, TenantId

__all__ = [
    "GLOBAL_TENANT",
    "EnvelopeStatus",
    "EnvelopeType",
    "ErrorInfo",
    "OnexEnvelope",
]

GLOBAL_TENANT = "global"


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
    tenant_id: TenantId = GLOBAL_TENANT
    node_id: NodeId
    contract_id: ContractId | None = None
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    created_at: AwareDatetime
    payload: dict[str, JsonValue]
    status: EnvelopeStatus | None = None
    error: ErrorInfo | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    schema_version: Literal[1] = 1

    @model_validator(mode="before")
    @classmethod
    def _default_correlation(cls, data: Any) -> Any:
        if (
            isinstance(data, Mapping)
            and data.get("correlation_id") is None
            and data.get("envelope_id") is not None
        ):
            return {**data, "correlation_id": data["envelope_id"]}
        return data

    @field_validator("created_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _check_status_and_error(self) -> Self:
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
