"""Delivery reports from a client's threads, handed to trio once per run of reports."""

from __future__ import annotations

import contextlib
import threading

import trio

from onex_actors.runtime import BatchAck

__all__ = ["AckRuns", "Settling"]


class Settling:
    """The acknowledgements still due for one published list (touched on trio only)."""

    __slots__ = ("failures", "on_ack", "remaining")

    def __init__(self, on_ack: BatchAck, count: int) -> None:
        self.on_ack = on_ack
        self.remaining = count
        self.failures: list[tuple[int, BaseException]] = []

    def settle(self, index: int, failure: BaseException | None) -> None:
        """Count the record at ``index`` settled; call ``on_ack`` once all are."""
        if failure is not None:
            self.failures.append((index, failure))
        self.remaining -= 1
        if self.remaining == 0:
            self.on_ack(self.failures)


class AckRuns:
    """Collects reports from any thread; wakes trio once per run of them, not per record."""

    def __init__(self) -> None:
        self._acks: list[tuple[Settling, int, BaseException | None]] = []
        self._lock = threading.Lock()
        self._token: trio.lowlevel.TrioToken | None = None

    def bind(self) -> None:
        """Deliver to the trio run this is called from."""
        self._token = trio.lowlevel.current_trio_token()

    def add(self, settling: Settling, index: int, failure: BaseException | None) -> None:
        """Report the record at ``index`` of ``settling``'s list (from any thread)."""
        if self._token is None:
            return
        with self._lock:
            self._acks.append((settling, index, failure))
            first = len(self._acks) == 1
        if first:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            acks, self._acks = self._acks, []
        for settling, index, failure in acks:
            settling.settle(index, failure)
