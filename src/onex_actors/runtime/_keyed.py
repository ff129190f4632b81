"""``KeyedNode``: what the host restores, keeps in step and times: a reducer or an orchestrator."""

from __future__ import annotations

from typing import Protocol

from onex_actors.core import KeyState

from ._state import KeyedStore

__all__ = ["KeyedNode"]


class KeyedNode(Protocol):
    """A node whose state is kept per key in a ``KeyedStore`` with a changelog topic."""

    node_id: str
    cmd_topic: str
    """The topic whose partitions the keys live in."""
    state_topic: str
    """The changelog topic."""
    store: KeyedStore
    partitions: int
    record_limit: int | None
    """The largest changelog record the producer may send (``None``: no limit known)."""
    timed: bool
    """Whether keys carry deadlines (timers the host fires)."""
    rekeyed: int
    """Records read off their key's partition and sent on to it."""

    def expires_at(self, state: KeyState) -> str | None:
        """Return when ``state`` runs out of its TTL, or ``None``."""
        ...

    def restored(self, partition: int) -> None:
        """Check ``partition``'s keys once restored; ``ConfigError`` if they cannot be served."""
        ...
