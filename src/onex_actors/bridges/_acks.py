"""Delivery reports from a client's threads, handed to trio once per list, not per record.

A published list's reports are counted where the client makes them (librdkafka's
report thread, kafka-python's sender): a record acknowledged costs one counter step
there, and trio is woken only when a list has every report, once per run of such lists.
"""

from __future__ import annotations

import contextlib
import itertools
import threading

import trio

from onex_actors.runtime import BatchAck

__all__ = ["AckRuns", "Settling"]


class Settling:
    """The reports still due for one published list, counted from any thread.

    Whichever report is the list's last hands it to its ``AckRuns``, which calls
    ``on_ack`` with the failures on trio.
    """

    __slots__ = ("_count", "_reported", "_runs", "failures", "on_ack")

    def __init__(self, on_ack: BatchAck, count: int, runs: AckRuns) -> None:
        self.on_ack = on_ack
        self._count = count
        self._runs = runs
        self.failures: list[tuple[int, BaseException]] = []
        # next() of a count is one C call under the GIL: two threads reporting at once
        # (a produce refused at once, beside the report thread) each get their own number
        self._reported = itertools.count(1).__next__

    def ok(self) -> None:
        """Count one record of the list acknowledged by the brokers."""
        if self._reported() == self._count:
            self._runs.add(self)

    def failed(self, index: int, failure: BaseException) -> None:
        """Count the record at ``index`` failed with ``failure``."""
        self.failures.append((index, failure))  # before it is counted: the last sees it
        if self._reported() == self._count:
            self._runs.add(self)


class AckRuns:
    """Collects settled lists from any thread; wakes trio once per run of them."""

    def __init__(self) -> None:
        self._settled: list[Settling] = []
        self._lock = threading.Lock()
        self._token: trio.lowlevel.TrioToken | None = None

    def bind(self) -> None:
        """Deliver to the trio run this is called from."""
        self._token = trio.lowlevel.current_trio_token()

    def settling(self, on_ack: BatchAck, count: int) -> Settling:
        """Return the report count of a list of ``count`` records, settled through here."""
        return Settling(on_ack, count, self)

    def add(self, settling: Settling) -> None:
        """Hand ``settling``, every report of its list in, to trio (from any thread)."""
        if self._token is None:
            return
        with self._lock:
            self._settled.append(settling)
            first = len(self._settled) == 1
        if first:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            settled, self._settled = self._settled, []
        for settling in settled:
            settling.on_ack(settling.failures)
