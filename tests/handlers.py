"""Handlers with scripted behaviour, for runtime tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import trio
from pydantic import JsonValue

from onex_actors.core import HandlerError, OnexEnvelope
from onex_actors.runtime import HandlerHealth


class ScriptedHandler:
    """Records every call; subclasses decide what a call does."""

    def __init__(self) -> None:
        self.calls: list[OnexEnvelope] = []
        self.call_times: list[float] = []

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        self.calls.append(envelope)
        self.call_times.append(trio.current_time())
        return await self.behave(envelope)

    async def behave(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        return envelope.payload

    async def health_check(self) -> HandlerHealth:
        return HandlerHealth(healthy=True)

    async def aclose(self) -> None:
        pass


class GatedHandler(ScriptedHandler):
    """Holds every call until the gate opens; counts calls in progress."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = trio.Event()
        self.entered = trio.Event()
        """Set once a call waits at the gate."""
        self.active = 0
        self.max_active = 0

    async def behave(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        self.active += 1
        self.entered.set()
        self.max_active = max(self.max_active, self.active)
        try:
            await self.gate.wait()
        finally:
            self.active -= 1
        return envelope.payload


class FailingHandler(ScriptedHandler):
    """Raises ``HandlerError`` for the first ``failures`` calls, then echoes."""

    def __init__(self, failures: int, *, retryable: bool = True) -> None:
        super().__init__()
        self.failures = failures
        self.retryable = retryable

    async def behave(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        if len(self.calls) <= self.failures:
            raise HandlerError(
                f"scripted failure {len(self.calls)}",
                error_type="scripted",
                retryable=self.retryable,
            )
        return envelope.payload


class CrashingHandler(ScriptedHandler):
    """Raises a bug-like exception on every call: the node actor crashes."""

    async def behave(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        raise RuntimeError(f"bug while handling {envelope.envelope_id}")


class HangingHandler(ScriptedHandler):
    """Never returns."""

    async def behave(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")


class BatchingHandler(ScriptedHandler):
    """A batch handler: ``execute_batch`` records each batch; payload flags script it.

    ``{"fail": true}`` fails (retryably) in a batch call only; ``{"crash": true}``
    crashes the actor on every call; ``{"hang": true}`` never returns. Until ``gate``
    opens, every batch call waits for it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[OnexEnvelope]] = []
        self.gate = trio.Event()
        self.gate.set()
        self.short_by = 0
        """Return this many outcomes too few (a bug in a handler)."""

    async def behave(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        if envelope.payload.get("crash"):
            raise RuntimeError(f"bug while handling {envelope.envelope_id}")
        if envelope.payload.get("hang"):
            await trio.sleep_forever()
        return envelope.payload

    async def execute_batch(
        self, envelopes: Sequence[OnexEnvelope]
    ) -> Sequence[Mapping[str, JsonValue] | HandlerError]:
        self.batches.append(list(envelopes))
        await self.gate.wait()
        outcomes: list[Mapping[str, JsonValue] | HandlerError] = []
        for envelope in envelopes:
            if envelope.payload.get("crash"):
                raise RuntimeError(f"bug while handling {envelope.envelope_id}")
            if envelope.payload.get("hang"):
                await trio.sleep_forever()
            if envelope.payload.get("fail"):
                outcomes.append(HandlerError("scripted", error_type="scripted", retryable=True))
            else:
                outcomes.append(envelope.payload)
        return outcomes[: len(outcomes) - self.short_by]
