"""Remembering answered envelopes for an idempotency window (pure).

A redelivered command whose ``envelope_id`` was answered within the window is not
handled again: the runtime re-emits the remembered answer instead. The window is
bounded three ways: by age, by count and by the bytes of the answers it keeps, so a
burst of large results cannot hold the host's memory.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, NamedTuple, TypeVar

__all__ = ["IdempotencyCache"]

T = TypeVar("T")


class _Entry(NamedTuple, Generic[T]):
    at: float
    answer: T
    size: int


class IdempotencyCache(Generic[T]):
    """Answers by envelope id, kept ``window_s``, at most ``max_entries`` and ``max_bytes``.

    The caller gives each answer's ``size`` (the runtime keeps the encoded record it
    produced, so the size is its length). An answer larger than ``max_bytes`` alone
    is not kept: a redelivery of its command is handled again, as at-least-once
    delivery allows.
    """

    def __init__(self, *, window_s: float, max_entries: int, max_bytes: int = 2**62) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        """Total ``size`` of the answers kept now."""
        # keyed by the id's integer: hashed in C (``UUID.__hash__`` is Python code)
        self._entries: OrderedDict[int, _Entry[T]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, envelope_id: uuid.UUID, now: float) -> T | None:
        """Return the answer remembered for ``envelope_id``, if still inside the window."""
        entry = self._entries.get(envelope_id.int)
        if entry is None:
            return None
        if now - entry.at >= self.window_s:
            self._expire(now)
            return None
        return entry.answer

    def remember(self, envelope_id: uuid.UUID, answer: T, now: float, *, size: int = 0) -> None:
        """Remember that ``envelope_id`` was answered with ``answer`` (``size`` bytes)."""
        self.remember_many([(envelope_id, answer, size)], now)

    def remember_many(self, answers: Iterable[tuple[uuid.UUID, T, int]], now: float) -> None:
        """Remember each ``(envelope_id, answer, size)`` of ``answers``, answered at ``now``."""
        entries = self._entries
        if self.max_entries == 0:
            return
        for envelope_id, answer, size in answers:
            number = envelope_id.int
            if number in entries:
                self._forget(number)
            if size > self.max_bytes:
                continue
            entries[number] = _Entry(now, answer, size)
            self.bytes += size
        while len(entries) > self.max_entries or self.bytes > self.max_bytes:
            self._pop_oldest()
        self._expire(now)

    def _forget(self, number: int) -> None:
        entry = self._entries.pop(number, None)
        if entry is not None:
            self.bytes -= entry.size

    def _pop_oldest(self) -> None:
        _, entry = self._entries.popitem(last=False)
        self.bytes -= entry.size

    def _expire(self, now: float) -> None:
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if now - oldest.at < self.window_s:
                return
            self._pop_oldest()
