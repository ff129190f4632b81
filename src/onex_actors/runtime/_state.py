"""A reducer's keyed state: committed per partition, with the writes not yet committed apart.

Each key's state lives with the input partition its commands are read from. A write
(``put``) is *pending* until the input offset it reflects is committed (with its outputs
and its changelog record, under either delivery mode); reads see the newest write. When
the records in flight are void (a transaction aborted, a partition read again from its
last commit), the pending writes of the partition are dropped and every key is back at its
last committed state, without reading the changelog again (as KIP-892 proposes for Kafka
Streams, which wipes and restores the whole store instead). Committed states go to a
``StateStore`` (memory, or disk); a write of ``None`` deletes its key (a tombstone).

A slice's writes are withdrawn together when deciding it fails part-way (``a_slice``):
its items are handled again, and must find their keys as they were before it.

Keys with a timeout or a TTL are also indexed by when they are next due (wall-clock
seconds, a ``DueIndex`` per partition), so the timer scan reads only the keys due, not
every state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from onex_actors.core import KeyState

from ._due import DueIndex
from ._outbox import RECORD_OVERHEAD
from ._ports import Record
from ._state_store import MemoryStates, StateStore

__all__ = ["KeyedStore", "due_at", "oversized"]


def oversized(value: bytes, key: bytes, limit: int | None) -> int | None:
    """Return the size of a changelog record of ``value`` under ``key`` if over ``limit``.

    ``None`` when it fits (or no limit is known). A state record the producer cannot
    send is refused before it reaches the store, so no state holds what its changelog
    never could.
    """
    if limit is None:
        return None
    size = len(value) + len(key) + RECORD_OVERHEAD
    return size if size > limit else None


def due_at(state: KeyState, ttl_s: float | None) -> float | None:
    """When ``state`` is next due (its timeout, or its TTL's end, the earlier), or never."""
    due: float | None = None
    if state.deadline is not None:
        due = datetime.fromisoformat(state.deadline).timestamp()
    if ttl_s is not None and state.changed_at is not None:
        expires = (datetime.fromisoformat(state.changed_at) + timedelta(seconds=ttl_s)).timestamp()
        due = expires if due is None else min(due, expires)
    return due


class KeyedStore:
    """One reducer's state, per partition: pending writes here, committed ones in a store."""

    def __init__(
        self,
        states: StateStore | None = None,
        *,
        due: Callable[[KeyState], float | None] | None = None,
    ) -> None:
        self.states: StateStore = states if states is not None else MemoryStates()
        """Where the committed states are kept."""
        self._pending: dict[int, dict[str, list[tuple[int, KeyState | None]]]] = {}
        """Per partition and key, the writes not committed yet: (input offset, state)."""
        self._due = due
        self._due_index: dict[int, DueIndex] = {}
        """Per partition, when each key with a timeout or TTL is next due."""
        self.owned: set[int] = set()
        """Partitions restored and served here (decisions on others are not taken)."""
        self._slice: list[tuple[int, str]] | None = None
        """The (partition, key) of each write of the slice being decided, in order."""

    def get(self, partition: int, key: str) -> KeyState | None:
        """Return ``key``'s newest state in ``partition``, or ``None`` if it has none."""
        pending = self._pending.get(partition)
        if pending:
            writes = pending.get(key)
            if writes:
                return writes[-1][1]
        return self.states.get(partition, key)

    def put(self, partition: int, key: str, state: KeyState | None, offset: int) -> None:
        """Write ``key``'s state (``None``: delete it), reflecting the input at ``offset``."""
        self._pending.setdefault(partition, {}).setdefault(key, []).append((offset, state))
        if self._slice is not None:
            self._slice.append((partition, key))
        if self._due is not None:
            self._index(partition, key, state)

    @contextmanager
    def a_slice(self) -> Iterator[None]:
        """Decide one slice: if it raises, the writes made in it are withdrawn, newest first.

        Its items are then handled again (a restarted actor's); had their writes stayed,
        they would read as duplicates of states no changelog record was ever sent for.
        """
        assert self._slice is None, "a slice is decided inside no other"
        writes: list[tuple[int, str]] = []
        self._slice = writes
        try:
            yield
        except BaseException:
            self._withdraw(writes)
            raise
        finally:
            self._slice = None

    def _withdraw(self, writes: list[tuple[int, str]]) -> None:
        for partition, key in reversed(writes):
            pending = self._pending.get(partition, {})
            kept = pending.get(key)
            if not kept:  # discarded meanwhile (a read-again)
                continue
            kept.pop()
            if not kept:
                del pending[key]
            if self._due is not None:
                self._index(partition, key, self.get(partition, key))

    def committed(self, partition: int, below: int) -> None:
        """Make the writes reflecting input offsets below ``below`` committed."""
        pending = self._pending.get(partition)
        if not pending:
            return
        promoted: dict[str, KeyState | None] = {}
        for key in list(pending):
            writes = pending[key]
            done = 0
            while done < len(writes) and writes[done][0] < below:
                done += 1
            if done:
                promoted[key] = writes[done - 1][1]
                if done == len(writes):
                    del pending[key]
                else:
                    del writes[:done]
        if promoted:
            self.states.write(partition, promoted)

    def pending(self, partition: int) -> int:
        """Return how many keys of ``partition`` have writes not committed yet."""
        return len(self._pending.get(partition, {}))

    def discard(self, partition: int) -> int:
        """Drop ``partition``'s pending writes (void); return how many keys had some."""
        dropped = self._pending.pop(partition, {})
        if self._due is not None:
            for key in dropped:
                self._index(partition, key, self.states.get(partition, key))
        return len(dropped)

    def drop(self, partition: int) -> None:
        """Forget ``partition`` (it went to another member): no decisions on it here."""
        self.states.clear(partition)
        self._pending.pop(partition, None)
        self._due_index.pop(partition, None)
        self.owned.discard(partition)

    def release(self, partition: int) -> None:
        """Stop serving ``partition`` but keep its committed states (a checkpoint's)."""
        self._pending.pop(partition, None)
        self._due_index.pop(partition, None)
        self.owned.discard(partition)

    def load(self, partition: int, records: Sequence[Record]) -> int:
        """Apply changelog records (a restore): each key's newest record wins.

        A record with no value (a tombstone) deletes its key. Return how many records
        could not be read as a state (skipped: the key keeps its previous record's).
        """
        batch: dict[str, KeyState | None] = {}
        unreadable = 0
        for record in records:
            if record.key is None:
                unreadable += 1
                continue
            key = record.key.decode("utf-8", "replace")
            if record.value is None:
                batch[key] = None
                continue
            try:
                batch[key] = KeyState.from_bytes(record.value)
            except ValueError:
                unreadable += 1
        self.states.write(partition, batch)
        if self._due is not None:
            for key, state in batch.items():
                self._index(partition, key, state)
        return unreadable

    def index_all(self, partition: int) -> None:
        """Index when each committed key of ``partition`` is due (after a checkpoint's load)."""
        if self._due is None:
            return
        self._due_index.pop(partition, None)
        for key, state in self.states.items(partition):
            self._index(partition, key, state)

    def _index(self, partition: int, key: str, state: KeyState | None) -> None:
        assert self._due is not None
        index = self._due_index.get(partition)
        if index is None:
            index = self._due_index[partition] = DueIndex()
        index.set(key, self._due(state) if state is not None else None)

    def due(self, now: float) -> Iterator[tuple[int, str, KeyState]]:
        """Yield (partition, stored key, newest state) of each key due by ``now``, served here."""
        for partition in sorted(self.owned):
            index = self._due_index.get(partition)
            if not index:
                continue
            for key in index.due(now):
                state = self.get(partition, key)
                if state is not None:
                    yield partition, key, state

    def find(self, key: str) -> Iterator[tuple[int, KeyState]]:
        """Yield ``key``'s newest state in each partition served here (inspection)."""
        for partition in sorted(self.owned):
            state = self.get(partition, key)
            if state is not None:
                yield partition, state

    def keys_in(self, partition: int) -> int:
        """Return how many keys ``partition`` holds (committed)."""
        return self.states.count(partition)

    def __len__(self) -> int:
        """Return how many keys the partitions served here hold (committed)."""
        return sum(self.states.count(partition) for partition in self.owned)
