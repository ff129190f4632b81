"""Remembering answered envelopes for an idempotency window (pure).

A redelivered command whose ``envelope_id`` was answered within the window is not
handled again: the runtime re-emits the remembered result instead.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

from ._envelope import OnexEnvelope

__all__ = ["IdempotencyCache"]


class IdempotencyCache:
    """Answered envelope ids and their results, kept ``window_s`` and at most ``max_entries``."""

    def __init__(self, *, window_s: float, max_entries: int) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._entries: OrderedDict[uuid.UUID, tuple[float, OnexEnvelope]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, envelope_id: uuid.UUID, now: float) -> OnexEnvelope | None:
        """Return the result remembered for ``envelope_id``, if still inside the window."""
        self._expire(now)
        entry = self._entries.get(envelope_id)
        return entry[1] if entry is not None else None

    def remember(self, envelope_id: uuid.UUID, result: OnexEnvelope, now: float) -> None:
        """Remember that ``envelope_id`` was answered with ``result`` at ``now``."""
        if self.max_entries == 0:
            return
        self._entries[envelope_id] = (now, result)
        self._entries.move_to_end(envelope_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._entries:
            oldest, _ = next(iter(self._entries.values()))
            if now - oldest < self.window_s:
                return
            self._entries.popitem(last=False)
