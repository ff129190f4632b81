"""``LmdbStates``: the ``StateStore`` port on LMDB (memory-mapped B+tree, one file).

One environment per reducer node and host, in its own folder: states keyed by the input
partition (4 bytes, big-endian) and the stored key, so one partition is a contiguous
range; checkpoints in a second table. Writes are not synced to disk one by one (a crash
of the process loses nothing the OS has; a crash of the machine may lose the newest): a
partition's states are trusted after a restart only through a checkpoint, which is saved
(and synced) when the host stops cleanly and removed (synced) before the partition is
served again. So a partition without a checkpoint is restored from its changelog, whole,
as the memory store is (Kafka Streams keeps its checkpoint file the same way under
exactly-once). An exclusive lock on the folder keeps a second process out.

Reads and writes are short (microseconds) and run on the calling thread: the host's
trio thread, as the memory store's do.
"""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

import lmdb

from onex_actors.core import ConfigError, KeyState, StateStoreError
from onex_actors.runtime import Checkpoint

__all__ = ["LmdbStates"]

_PARTITION: Final = struct.Struct(">I")
_CHECKPOINT: Final = struct.Struct(">qd")
DEFAULT_MAP_SIZE: Final = 64 * 1024**3
"""The largest the file may grow (address space, not disk: the file grows as written)."""


class LmdbStates:
    """A reducer's committed states in an LMDB environment (see the module)."""

    durable = True

    def __init__(self, path: Path, *, map_size: int = DEFAULT_MAP_SIZE) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = _lock_folder(path)
        try:
            self._env = lmdb.open(
                str(path),
                map_size=map_size,
                max_dbs=2,
                sync=False,
                metasync=False,
                readahead=False,
            )
        except lmdb.Error as exc:
            os.close(self._lock)
            raise ConfigError(f"cannot open the state store in {path}: {exc}") from None
        self._states = self._env.open_db(b"states")
        self._checkpoints = self._env.open_db(b"checkpoints")
        self._counts: dict[int, int] = {}
        self._clear_unchecked()

    def _clear_unchecked(self) -> None:
        """Clear the partitions that have no checkpoint (their process did not stop cleanly)."""
        with self._env.begin(db=self._states) as txn:
            held = list(_partitions(txn.cursor()))
        for partition in held:
            if self.checkpoint(partition) is None:
                self.clear(partition)
            else:
                self._counts[partition] = sum(1 for _ in self._keys(partition))

    def _keys(self, partition: int) -> Iterator[bytes]:
        prefix = _PARTITION.pack(partition)
        with self._env.begin(db=self._states) as txn:
            cursor = txn.cursor()
            if cursor.set_range(prefix):
                for key in cursor.iternext(keys=True, values=False):
                    if not key.startswith(prefix):
                        break
                    yield key

    def get(self, partition: int, key: str) -> KeyState | None:
        """Return ``key``'s committed state in ``partition``."""
        with self._env.begin(db=self._states) as txn:
            value = txn.get(_PARTITION.pack(partition) + key.encode())
        return KeyState.from_bytes(value) if value is not None else None

    def write(self, partition: int, states: Mapping[str, KeyState | None]) -> None:
        """Store each key's state (``None`` deletes it), in one write transaction.

        Raises ``StateStoreError`` when LMDB cannot (a full disk, the map full): nothing
        of the transaction is kept.
        """
        prefix = _PARTITION.pack(partition)
        added = 0
        try:
            with self._env.begin(db=self._states, write=True) as txn:
                for key, state in states.items():
                    name = prefix + key.encode()
                    if state is None:
                        added -= txn.delete(name)
                    elif txn.replace(name, state.to_bytes()) is None:
                        added += 1
        except lmdb.Error as exc:
            raise StateStoreError(
                f"the state store in {self.path} could not write {len(states)} state(s) of "
                f"partition {partition}: {exc}. Free disk space (or raise "
                "state.map_size_gib if the map is full); the host restores the partition "
                "from its changelog when started again"
            ) from None
        self._counts[partition] = self._counts.get(partition, 0) + added

    def clear(self, partition: int) -> None:
        """Delete every state of ``partition`` and its checkpoint."""
        prefix = _PARTITION.pack(partition)
        with self._env.begin(db=self._states, write=True) as txn:
            cursor = txn.cursor()
            if cursor.set_range(prefix):
                while cursor.key().startswith(prefix) and cursor.delete():
                    pass
            txn.delete(prefix, db=self._checkpoints)
        self._counts.pop(partition, None)

    def count(self, partition: int) -> int:
        """Return how many keys ``partition`` holds."""
        return self._counts.get(partition, 0)

    def items(self, partition: int) -> Iterator[tuple[str, KeyState]]:
        """Yield each key of ``partition`` with its state."""
        prefix = _PARTITION.pack(partition)
        with self._env.begin(db=self._states) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(prefix):
                return
            for name, value in cursor:
                if not name.startswith(prefix):
                    break
                yield name[len(prefix) :].decode(), KeyState.from_bytes(value)

    def checkpoint(self, partition: int) -> Checkpoint | None:
        """Return ``partition``'s checkpoint, if one was saved and not removed since."""
        with self._env.begin(db=self._checkpoints) as txn:
            value = txn.get(_PARTITION.pack(partition))
        if value is None or len(value) != _CHECKPOINT.size:
            return None
        offset, saved_at = _CHECKPOINT.unpack(value)
        return Checkpoint(offset, saved_at)

    def save_checkpoint(self, partition: int, checkpoint: Checkpoint) -> None:
        """Record the changelog offset ``partition``'s states reflect; sync to disk."""
        value = _CHECKPOINT.pack(checkpoint.offset, checkpoint.saved_at)
        with self._env.begin(db=self._checkpoints, write=True) as txn:
            txn.put(_PARTITION.pack(partition), value)
        self._env.sync(True)

    def forget_checkpoint(self, partition: int) -> None:
        """Remove ``partition``'s checkpoint (synced: its states move on from here)."""
        with self._env.begin(db=self._checkpoints, write=True) as txn:
            removed = txn.delete(_PARTITION.pack(partition))
        if removed:
            self._env.sync(True)

    def close(self) -> None:
        """Sync and close the environment; release the folder."""
        if self._lock < 0:
            return
        self._env.sync(True)
        self._env.close()
        os.close(self._lock)
        self._lock = -1


def _partitions(cursor: lmdb.Cursor) -> Iterator[int]:
    """Yield each partition that holds a key (one seek per partition)."""
    at = b""
    while cursor.set_range(at):
        (partition,) = _PARTITION.unpack(cursor.key()[: _PARTITION.size])
        yield partition
        at = _PARTITION.pack(partition + 1)


def _lock_folder(path: Path) -> int:
    fd = os.open(path / "onex.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            f"the state store in {path} is open in another process: give each host its own "
            "state.path (hosts of one runtime on one machine each need one)"
        ) from None
    return fd
