"""The state store port: where a reducer's *committed* states live, per partition.

``KeyedStore`` keeps the writes not committed yet itself and hands a store only what is
committed. Two stores: :class:`MemoryStates` (a dict per partition; the default) and an
on-disk one (``onex_actors.bridges.lmdb``), which also keeps a *checkpoint* per partition:
the changelog offset its states reflect, saved when the host stops cleanly, so that the
next start reads only the changelog's tail after it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol, runtime_checkable

import attrs

from onex_actors.core import KeyState

__all__ = ["Checkpoint", "MemoryStates", "StateStore"]


@attrs.frozen
class Checkpoint:
    """A partition's states reflect its changelog up to ``offset`` (exclusive)."""

    offset: int
    saved_at: float
    """Wall-clock time it was saved (seconds since the epoch): an old one is not used."""


@runtime_checkable
class StateStore(Protocol):
    """One reducer's committed states, per input partition (the port)."""

    durable: bool
    """Whether states and checkpoints outlive the process."""

    def get(self, partition: int, key: str) -> KeyState | None:
        """Return ``key``'s committed state in ``partition`` (``None``: it has none)."""
        ...

    def write(self, partition: int, states: Mapping[str, KeyState | None]) -> None:
        """Store each key's state; ``None`` deletes the key. One batch, applied whole."""
        ...

    def clear(self, partition: int) -> None:
        """Delete every state of ``partition`` and its checkpoint."""
        ...

    def count(self, partition: int) -> int:
        """Return how many keys ``partition`` holds."""
        ...

    def items(self, partition: int) -> Iterator[tuple[str, KeyState]]:
        """Yield each key of ``partition`` with its state."""
        ...

    def checkpoint(self, partition: int) -> Checkpoint | None:
        """Return ``partition``'s checkpoint, if one was saved (and not forgotten since)."""
        ...

    def save_checkpoint(self, partition: int, checkpoint: Checkpoint) -> None:
        """Record that ``partition``'s states reflect its changelog up to the checkpoint."""
        ...

    def forget_checkpoint(self, partition: int) -> None:
        """Drop ``partition``'s checkpoint: its states move on from here."""
        ...

    def close(self) -> None:
        """Flush and release what the store holds open."""
        ...


class MemoryStates:
    """Committed states in a dict per partition; nothing outlives the process."""

    durable = False

    def __init__(self) -> None:
        self._states: dict[int, dict[str, KeyState]] = {}

    def get(self, partition: int, key: str) -> KeyState | None:
        """Return ``key``'s committed state in ``partition``."""
        keys = self._states.get(partition)
        return keys.get(key) if keys is not None else None

    def write(self, partition: int, states: Mapping[str, KeyState | None]) -> None:
        """Store each key's state (``None`` deletes it)."""
        keys = self._states.setdefault(partition, {})
        for key, state in states.items():
            if state is None:
                keys.pop(key, None)
            else:
                keys[key] = state

    def clear(self, partition: int) -> None:
        """Forget ``partition``."""
        self._states.pop(partition, None)

    def count(self, partition: int) -> int:
        """Return how many keys ``partition`` holds."""
        return len(self._states.get(partition, {}))

    def items(self, partition: int) -> Iterator[tuple[str, KeyState]]:
        """Yield each key of ``partition`` with its state."""
        yield from list(self._states.get(partition, {}).items())

    def checkpoint(self, partition: int) -> Checkpoint | None:
        """Return ``None``: memory keeps nothing across a restart."""
        return None

    def save_checkpoint(self, partition: int, checkpoint: Checkpoint) -> None:
        """Do nothing (the states die with the process)."""

    def forget_checkpoint(self, partition: int) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""
