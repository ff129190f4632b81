"""Answers kept durably (``durable_idempotency``), across restarts.

A redelivered command is answered again from its record; its handler is not called.

``RecordedHandler`` wraps any handler: it recalls, else executes and records; the
record follows the effect, so a crash between the two executes the command again on
redelivery. A db node does better: ``DbHandler`` writes the record in its statement's
transaction (``AnswerStore.run_once``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from pydantic import JsonValue

from onex_actors.core import DurableIdempotency, HandlerError, OnexEnvelope
from onex_actors.runtime import AnswerStore, Handler, HandlerHealth

__all__ = ["AnswerPruner", "RecordedHandler"]

logger = logging.getLogger("onex_actors.handlers")

PRUNE_EVERY_S = 60.0
"""How often a node's old answers are dropped (on the next command after that long)."""


class AnswerPruner:
    """Drops a node's answers past their retention or count, at most once a minute."""

    def __init__(self, store: AnswerStore, node_id: str, settings: DurableIdempotency) -> None:
        self.store = store
        self.node_id = node_id
        self.settings = settings
        self._next = 0.0

    async def maybe_prune(self) -> None:
        """Prune if the last prune was more than ``PRUNE_EVERY_S`` ago."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + PRUNE_EVERY_S
        try:
            dropped = await self.store.prune(
                self.node_id, self.settings.retention_s, self.settings.max_entries
            )
        except HandlerError as exc:  # pruning is housekeeping: the command goes on
            logger.warning("node %s: old answers not pruned: %s", self.node_id, exc)
            return
        if dropped:
            logger.info("node %s: %d old answers dropped", self.node_id, dropped)


class RecordedHandler:
    """``inner`` with its answers recorded in an ``AnswerStore``."""

    def __init__(
        self, inner: Handler, store: AnswerStore, node_id: str, settings: DurableIdempotency
    ) -> None:
        self.inner = inner
        self.store = store
        self.node_id = node_id
        self.pruner = AnswerPruner(store, node_id, settings)
        self.recalled = 0
        """Commands answered from the record instead of executed."""

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        """Answer from the record, else execute ``envelope`` and record the answer."""
        await self.pruner.maybe_prune()
        recalled = await self.store.recall(self.node_id, envelope.envelope_id)
        if recalled is not None:
            self.recalled += 1
            return recalled
        answer = await self.inner.execute(envelope)
        await self.store.remember(self.node_id, envelope.envelope_id, answer)
        return answer

    async def health_check(self) -> HandlerHealth:
        """Return the inner handler's health."""
        return await self.inner.health_check()

    async def aclose(self) -> None:
        """Close the inner handler."""
        await self.inner.aclose()
