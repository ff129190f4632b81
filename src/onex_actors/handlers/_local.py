"""``LocalHandler``: in-process work, echo or a trivial transformation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import trio
from pydantic import JsonValue

from onex_actors.core import HandlerError, LocalEffect, OnexEnvelope
from onex_actors.runtime import HandlerHealth

__all__ = ["LocalHandler"]


def _uppercase(value: JsonValue) -> JsonValue:
    if isinstance(value, str):
        return value.upper()
    if isinstance(value, list):
        return [_uppercase(v) for v in value]
    if isinstance(value, dict):
        return {k: _uppercase(v) for k, v in value.items()}
    return value


class LocalHandler:
    """Echoes the payload (``operation: echo``) or upper-cases its strings (``uppercase``)."""

    def __init__(self, effect: LocalEffect) -> None:
        self.effect = effect

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        """Return the payload, transformed as the contract says."""
        return self._transform(envelope)

    async def execute_batch(
        self, envelopes: Sequence[OnexEnvelope]
    ) -> Sequence[Mapping[str, JsonValue] | HandlerError]:
        """Return each payload, transformed as the contract says: one call for many."""
        await trio.lowlevel.checkpoint()
        return [self._transform(envelope) for envelope in envelopes]

    def _transform(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        if self.effect.operation == "uppercase":
            return {k: _uppercase(v) for k, v in envelope.payload.items()}
        return envelope.payload

    async def health_check(self) -> HandlerHealth:
        """Report healthy: a local handler depends on nothing."""
        return HandlerHealth(healthy=True)

    async def aclose(self) -> None:
        """Nothing to release."""
