"""``DueIndex``: when each key of one partition is next due, filed by the second.

The timer scan asks every second which keys are due. Scanning a dict of every timed key
costs all of them each time (about 30 ms a scan for a million); this index files each key
under the whole second it is due in, so a scan sweeps the seconds that passed since the
last one into the keys due and pays for those, not for the rest (a timing wheel, one slot
a second, no slot for a second no key is due in). A write moves its key between two
slots, a few dict operations.
"""

from __future__ import annotations

import math

__all__ = ["DueIndex"]


class DueIndex:
    """When each key is next due (seconds, any clock), and which keys are due by a time."""

    __slots__ = ("_at", "_due", "_seconds", "_swept")

    def __init__(self) -> None:
        self._at: dict[str, float] = {}
        """Each key's current due time."""
        self._seconds: dict[int, dict[str, None]] = {}
        """Keys not swept yet, by the whole second they are due in."""
        self._due: dict[str, None] = {}
        """Keys whose second was swept (due by now, or within the second of the last scan)."""
        self._swept: int | None = None
        """Every second before this one was swept (``None``: none was)."""

    def set(self, key: str, due: float | None) -> None:
        """Make ``key`` due at ``due`` (``None``: never)."""
        at = self._at
        old = at.get(key)
        if old == due:
            return
        if old is not None:
            self._unfile(key, old)
        if due is None:
            del at[key]
            return
        at[key] = due
        second = math.floor(due)
        swept = self._swept
        if swept is not None and second < swept:
            self._due[key] = None
            return
        keys = self._seconds.get(second)
        if keys is None:
            keys = self._seconds[second] = {}
        keys[key] = None

    def due(self, now: float) -> list[str]:
        """Return the keys due by ``now``: every key whose due time is at or before it."""
        last = math.floor(now)
        seconds, swept = self._seconds, self._swept
        if swept is None or last - swept > len(seconds):  # few slots for that many seconds
            passed = [second for second in seconds if second <= last]
        else:
            passed = [second for second in range(swept, last + 1) if second in seconds]
        for second in passed:
            self._due.update(seconds.pop(second))
        if swept is None or last + 1 > swept:
            self._swept = last + 1
        at = self._at
        return [key for key in self._due if at[key] <= now]

    def __len__(self) -> int:
        """Return how many keys have a due time."""
        return len(self._at)

    def _unfile(self, key: str, old: float) -> None:
        if self._due.pop(key, 0) is None:  # it was swept
            return
        second = math.floor(old)
        keys = self._seconds[second]
        del keys[key]
        if not keys:
            del self._seconds[second]
