"""Per-node runtime policies a contract may declare: retry and restart (SPEC §5, §6)."""

from __future__ import annotations

import enum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["RestartPolicy", "RestartStrategy", "RetryPolicy", "backoff_delay"]


def backoff_delay(attempt: int, *, initial_s: float, maximum_s: float, multiplier: float) -> float:
    """Exponential backoff: ``initial_s * multiplier**(attempt-1)``, capped at ``maximum_s``.

    ``attempt`` counts from 1 (the delay before the first retry or restart).
    """
    if attempt < 1:
        return 0.0
    return float(min(maximum_s, initial_s * multiplier ** min(attempt - 1, 64)))


class _Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backoff_initial_s: float = Field(default=0.1, ge=0)
    backoff_max_s: float = Field(default=5.0, ge=0)
    backoff_multiplier: float = Field(default=2.0, ge=1)

    @model_validator(mode="after")
    def _check_backoff(self) -> Self:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be at least backoff_initial_s")
        return self

    def delay(self, attempt: int) -> float:
        """Backoff before retry or restart number ``attempt`` (from 1)."""
        return backoff_delay(
            attempt,
            initial_s=self.backoff_initial_s,
            maximum_s=self.backoff_max_s,
            multiplier=self.backoff_multiplier,
        )


class RetryPolicy(_Policy):
    """How often a retryable handler error is retried, and how long to wait between tries."""

    max_attempts: int = Field(default=3, ge=1, le=1000)


class RestartStrategy(enum.StrEnum):
    """OTP restart strategies for a node actor."""

    PERMANENT = "permanent"
    """Always restarted, whatever ended it."""
    TRANSIENT = "transient"
    """Restarted only after a crash, not after a normal exit."""
    TEMPORARY = "temporary"
    """Never restarted."""


class RestartPolicy(_Policy):
    """How the supervisor restarts a node actor, and when it gives up (intensity)."""

    backoff_initial_s: float = Field(default=0.01, ge=0)
    policy: RestartStrategy = RestartStrategy.PERMANENT
    max_restarts: int = Field(default=10, ge=0)
    window_s: float = Field(default=60.0, gt=0)
    poison_threshold: int = Field(default=3, ge=1)
    """Crashes one envelope may cause before it is dead-lettered as poison."""
