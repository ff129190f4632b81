"""Completion tracking of one consumed record: done once all its results are acknowledged."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Ticket"]


class Ticket:
    """Counts the outputs produced for one input record and fires ``on_done`` when settled.

    Each output takes an acknowledgement callback from :meth:`expect`; :meth:`seal` says
    no more outputs will follow. ``on_done`` runs once, when the ticket is sealed and
    every output is acknowledged. A failed acknowledgement leaves the ticket unsettled,
    so its record is never committed and is redelivered after a restart.
    """

    __slots__ = ("_on_done", "_pending", "_sealed", "failure", "settled")

    def __init__(self, on_done: Callable[[], None] | None = None) -> None:
        self._on_done = on_done
        self._pending = 0
        self._sealed = False
        self.settled = False
        self.failure: BaseException | None = None

    def expect(self) -> Callable[[BaseException | None], None]:
        """Register one more output; return the callback its acknowledgement must call."""
        self._pending += 1
        return self._ack

    def seal(self) -> None:
        """Say that every output of this record has been handed over."""
        self._sealed = True
        self._maybe_settle()

    def _ack(self, error: BaseException | None) -> None:
        if error is not None:
            self.failure = error
            return
        self._pending -= 1
        self._maybe_settle()

    def _maybe_settle(self) -> None:
        if self._sealed and self._pending == 0 and self.failure is None and not self.settled:
            self.settled = True
            if self._on_done is not None:
                self._on_done()
