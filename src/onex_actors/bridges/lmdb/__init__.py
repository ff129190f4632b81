"""LMDB: a reducer's committed states on disk, with per-partition checkpoints."""

from ._store import LmdbStates as LmdbStates

__all__ = ["LmdbStates"]
