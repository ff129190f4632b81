"""The state store port of the reducer kinds, and the store kept in memory.

A store holds each key's ``KeyState`` by the input partition the key is read from, so
a partition's keys can be restored, handed over or dropped together.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from onex_actors.core import KeyState

__all__ = ["InMemoryStateStore", "StateStore"]


class StateStore(Protocol):
    """Where a reducer's keyed state lives."""

    def get(self, partition: int, key: str) -> KeyState | None:
        """Return ``key``'s state in ``partition``, or ``None`` if it has none."""
        ...

    def put(self, partition: int, key: str, state: KeyState) -> None:
        """Set ``key``'s state in ``partition``."""
        ...

    def find(self, key: str) -> Iterator[tuple[int, KeyState]]:
        """Yield ``key``'s state in each partition holding it (inspection)."""
        ...

    def __len__(self) -> int:
        """Return how many keys the store holds."""
        ...


class InMemoryStateStore:
    """A store in a dict per partition: for the in-process bus, ``onex call`` and tests."""

    def __init__(self) -> None:
        self._partitions: dict[int, dict[str, KeyState]] = {}

    def get(self, partition: int, key: str) -> KeyState | None:
        """Return ``key``'s state in ``partition``, or ``None`` if it has none."""
        keys = self._partitions.get(partition)
        return keys.get(key) if keys is not None else None

    def put(self, partition: int, key: str, state: KeyState) -> None:
        """Set ``key``'s state in ``partition``."""
        self._partitions.setdefault(partition, {})[key] = state

    def find(self, key: str) -> Iterator[tuple[int, KeyState]]:
        """Yield ``key``'s state in each partition holding it."""
        for partition, keys in sorted(self._partitions.items()):
            if key in keys:
                yield partition, keys[key]

    def __len__(self) -> int:
        """Return how many keys the store holds."""
        return sum(len(keys) for keys in self._partitions.values())
