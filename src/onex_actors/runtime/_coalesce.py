"""Changelog records made redundant by a later one of the same key, found before sending.

A compacted changelog keeps only the newest record of each key, and a restore reads only
that one. Within one list sent together (a slice's outputs at least once, a
transaction's exactly once), a state record followed by another of the same topic,
partition and key carries nothing the later one does not: it need not be sent, and
whoever waits for its acknowledgement can wait for the later one's instead. Kafka
Streams' record cache does the same over a commit interval.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._ports import OutboundRecord

__all__ = ["superseded"]


def superseded(records: Sequence[OutboundRecord]) -> dict[int, int]:
    """Map the index of each compacted record a later one makes redundant to that one's.

    The later record is the newest of its topic, partition and key in ``records``, so
    the map's values are the indexes of records kept. Empty when nothing is redundant.
    """
    newest: dict[tuple[str, int | None, bytes | None], int] = {}
    dropped: dict[int, int] = {}
    for index in range(len(records) - 1, -1, -1):
        record = records[index]
        if not record.compacted:
            continue
        slot = (record.topic, record.partition, record.key)
        kept = newest.setdefault(slot, index)
        if kept != index:
            dropped[index] = kept
    return dropped
