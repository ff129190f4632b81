"""A reducer's keyed state: committed per partition, with the writes not yet committed apart.

Each key's state lives with the input partition its commands are read from. A write
(``put``) is *pending* until the input offset it reflects is committed (with its outputs
and its changelog record, under either delivery mode); reads see the newest write. When
the records in flight are void (a transaction aborted, a partition read again from its
last commit), the pending writes of the partition are dropped and every key is back at its
last committed state, without reading the changelog again (as KIP-892 proposes for Kafka
Streams, which wipes and restores the whole store instead).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from onex_actors.core import KeyState

from ._ports import Record

__all__ = ["KeyedStore"]


class KeyedStore:
    """One reducer's state, per partition, in memory."""

    def __init__(self) -> None:
        self._committed: dict[int, dict[str, KeyState]] = {}
        self._pending: dict[int, dict[str, list[tuple[int, KeyState]]]] = {}
        """Per partition and key, the writes not committed yet: (input offset, state)."""
        self.owned: set[int] = set()
        """Partitions restored and served here (decisions on others are not taken)."""

    def get(self, partition: int, key: str) -> KeyState | None:
        """Return ``key``'s newest state in ``partition``, or ``None`` if it has none."""
        writes = self._pending.get(partition, {}).get(key)
        if writes:
            return writes[-1][1]
        return self._committed.get(partition, {}).get(key)

    def put(self, partition: int, key: str, state: KeyState, offset: int) -> None:
        """Write ``key``'s state, reflecting the input record at ``offset`` (pending)."""
        self._pending.setdefault(partition, {}).setdefault(key, []).append((offset, state))

    def committed(self, partition: int, below: int) -> None:
        """Make the writes reflecting input offsets below ``below`` committed."""
        pending = self._pending.get(partition)
        if not pending:
            return
        committed = self._committed.setdefault(partition, {})
        for key in list(pending):
            writes = pending[key]
            done = 0
            while done < len(writes) and writes[done][0] < below:
                done += 1
            if done:
                committed[key] = writes[done - 1][1]
                if done == len(writes):
                    del pending[key]
                else:
                    del writes[:done]

    def discard(self, partition: int) -> int:
        """Drop ``partition``'s pending writes (void); return how many keys had some."""
        return len(self._pending.pop(partition, {}))

    def drop(self, partition: int) -> None:
        """Forget ``partition`` (it went to another member): no decisions on it here."""
        self._committed.pop(partition, None)
        self._pending.pop(partition, None)
        self.owned.discard(partition)

    def load(self, partition: int, records: Sequence[Record]) -> int:
        """Apply changelog records (a restore): each key's newest record wins.

        A record with no value (a tombstone) deletes its key. Return how many records
        could not be read as a state (skipped: the key keeps its previous record's).
        """
        keys = self._committed.setdefault(partition, {})
        unreadable = 0
        for record in records:
            if record.key is None:
                unreadable += 1
                continue
            key = record.key.decode("utf-8", "replace")
            if record.value is None:
                keys.pop(key, None)
                continue
            try:
                keys[key] = KeyState.from_bytes(record.value)
            except ValueError:
                unreadable += 1
        return unreadable

    def deadlines(self) -> Iterator[tuple[str, KeyState]]:
        """Yield (stored key, newest state) of each key with a deadline, in owned partitions."""
        for partition in sorted(self.owned):
            names = (
                self._committed.get(partition, {}).keys() | self._pending.get(partition, {}).keys()
            )
            for name in names:
                state = self.get(partition, name)
                if state is not None and state.deadline is not None:
                    yield name, state

    def find(self, key: str) -> Iterator[tuple[int, KeyState]]:
        """Yield ``key``'s newest state in each partition holding it (inspection)."""
        for partition in sorted(self._committed.keys() | self._pending.keys()):
            state = self.get(partition, key)
            if state is not None:
                yield partition, state

    def keys_in(self, partition: int) -> int:
        """Return how many keys ``partition`` holds (committed)."""
        return len(self._committed.get(partition, {}))

    def __len__(self) -> int:
        """Return how many keys the store holds (committed)."""
        return sum(len(keys) for keys in self._committed.values())
