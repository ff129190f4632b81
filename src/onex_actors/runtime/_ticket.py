"""Completion tracking of consumed records: done once all their results are acknowledged."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from onex_actors.core import Fate, PartitionOffsets, fate_of

__all__ = ["Ticket", "ticket_of"]


class Ticket:
    """Counts the outputs of a slice of input records and fires ``on_done`` when settled.

    A ticket covers ``parts`` envelopes (one slice of a poll, or one record). Each output
    takes an acknowledgement callback from :meth:`expect`; :meth:`seal` says one part
    will have no more outputs. ``on_done`` runs once, when every part is sealed and every
    output is acknowledged. A failed acknowledgement leaves the ticket unsettled, so its
    records are never committed and are redelivered after a restart.
    """

    __slots__ = (
        "_highest",
        "_on_done",
        "_pending",
        "_unsealed",
        "failure",
        "marks",
        "settled",
    )

    def __init__(
        self,
        on_done: Callable[[], None] | None = None,
        *,
        parts: int = 1,
        marks: Sequence[tuple[PartitionOffsets, int]] = (),
    ) -> None:
        self._on_done = on_done
        self.marks = marks
        """The input records this ticket covers: each one's partition tracker and offset."""
        self._highest: list[tuple[PartitionOffsets, int]] | None = None
        """Each partition's highest marked offset: the prefix is done up to it or not."""
        self._pending = 0
        self._unsealed = parts
        self.settled = False
        self.failure: BaseException | None = None

    def expect(self) -> Callable[[BaseException | None], None]:
        """Register one more output; return the callback its acknowledgement must call."""
        self._pending += 1
        return self._ack

    def expect_many(self, count: int) -> list[Callable[[BaseException | None], None]]:
        """Register ``count`` more outputs; return the callback each one's ack must call.

        The same callback for all of them, each acknowledgement calling it once.
        """
        self._pending += count
        return [self._ack] * count

    def fate(self) -> Fate:
        """Return what a round does with this ticket's outputs (``core.fate_of``).

        One check per partition, its highest marked offset (a transaction asks this of
        every held output).
        """
        return fate_of(self._per_partition())

    def _per_partition(self) -> list[tuple[PartitionOffsets, int]]:
        if self._highest is None:
            highest: dict[int, tuple[PartitionOffsets, int]] = {}
            for offsets, offset in self.marks:
                known = highest.get(id(offsets))
                if known is None or offset > known[1]:
                    highest[id(offsets)] = (offsets, offset)
            self._highest = list(highest.values())
        return self._highest

    def seal(self) -> None:
        """Say that one part (envelope) has handed over every output it will have."""
        self._unsealed -= 1
        self._maybe_settle()

    def _ack(self, error: BaseException | None) -> None:
        if error is not None:
            self.failure = error
            return
        self._pending -= 1
        self._maybe_settle()

    def _maybe_settle(self) -> None:
        if self._unsealed <= 0 and self._pending == 0 and self.failure is None and not self.settled:
            self.settled = True
            if self._on_done is not None:
                self._on_done()


def ticket_of(on_ack: Callable[[BaseException | None], None] | None) -> Ticket | None:
    """Return the ticket an acknowledgement callback from :meth:`Ticket.expect` settles."""
    owner = getattr(on_ack, "__self__", None)
    return owner if isinstance(owner, Ticket) else None
