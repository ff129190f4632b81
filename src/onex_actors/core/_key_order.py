"""``KeyOrder``: work handed out in parallel, but never two items of one key at once.

The scheduling of a node's inbox under ``ordering: key`` (and ``partition``, whose key
is the partition): items of different keys run in parallel, items of one key one after
another in the order they arrived, as in Confluent's Parallel Consumer. An item with
the key ``None`` is ordered with nothing. The commit rule is not this queue's business:
offsets are still committed only past a contiguous done prefix.

Every operation is O(1). The queue holds items in two places: ``ready`` (at most one
item per key, the next one of its key to run) and, per key that has an item out or
ready, the later items of that key behind it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["KeyOrder"]

T = TypeVar("T")


class KeyOrder(Generic[T]):
    """A FIFO of items that hands out at most one item of each key until it is released."""

    __slots__ = ("_behind", "_ready", "_size")

    def __init__(self) -> None:
        self._ready: deque[tuple[T, Hashable]] = deque()
        self._behind: dict[Hashable, deque[tuple[T, Hashable]]] = {}
        """Per key with an item out or ready: the items of that key waiting behind it."""
        self._size = 0

    def __len__(self) -> int:
        """Items queued (ready or waiting behind their key), not the ones handed out."""
        return self._size

    @property
    def ready(self) -> int:
        """How many items :meth:`pop` can hand out now."""
        return len(self._ready)

    @property
    def keys_held(self) -> int:
        """Keys with an item handed out or ready."""
        return len(self._behind)

    def push(self, item: T, key: Hashable) -> None:
        """Queue ``item`` behind every earlier item of ``key``."""
        self._size += 1
        if key is None:
            self._ready.append((item, None))
            return
        behind = self._behind.get(key)
        if behind is None:
            self._behind[key] = deque()
            self._ready.append((item, key))
        else:
            behind.append((item, key))

    def pop(self) -> tuple[T, Hashable]:
        """Hand out the oldest ready item with its key; ``IndexError`` if none is ready.

        Its key stays held, so no later item of it is ready, until :meth:`release`.
        """
        entry = self._ready.popleft()
        self._size -= 1
        return entry

    def release(self, key: Hashable) -> None:
        """Say the item handed out for ``key`` is done: the next one of the key gets ready."""
        if key is None:
            return
        behind = self._behind[key]
        if behind:
            self._ready.append(behind.popleft())
        else:
            del self._behind[key]
