"""What a delivery round decides about a held output (pure).

An exactly-once round commits, per partition, the done prefix of the records read (the
``PartitionUnit``'s due offset) together with the outputs of exactly those records. At
a round, each held output *rides* (every input record lies in its partition's done
prefix, so the same commit covers its offsets), *waits* (some input is not done yet) or
is *void* (some input's partition is read again from its last commit, after an abort
or a revocation: its outputs are answered again and must never be committed).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from ._offsets import PartitionOffsets

__all__ = ["Fate", "fate_of"]


class Fate(enum.Enum):
    """What a round does with one held output."""

    RIDES = "rides"
    WAITS = "waits"
    VOID = "void"


def fate_of(inputs: Iterable[tuple[PartitionOffsets, int]]) -> Fate:
    """Return the fate of an output whose input records are ``inputs``.

    ``inputs`` are (the partition's records in flight, the offset) pairs; one per
    partition suffices, its highest: a done prefix holding it holds the lower ones.
    An output of no input (a runtime log event) rides.
    """
    fate = Fate.RIDES
    for offsets, offset in inputs:
        if offsets.retired:
            return Fate.VOID
        if not offsets.covers(offset):
            fate = Fate.WAITS
    return fate
