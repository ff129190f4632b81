"""``WorkItem``: one envelope on its way through a node."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from pydantic import JsonValue

from onex_actors.core import OnexEnvelope

from ._ports import Record
from ._ticket import Ticket
from ._tracing import EnvelopeSpan

__all__ = ["WorkItem"]


class WorkItem:
    """An envelope, the ticket of the slice it came in, and the record it was read from."""

    __slots__ = (
        "answered",
        "crashes",
        "envelope",
        "order_key",
        "record",
        "refused",
        "sealed",
        "span",
        "ticket",
    )

    def __init__(
        self, envelope: OnexEnvelope, ticket: Ticket | None = None, record: Record | None = None
    ) -> None:
        self.envelope = envelope
        self.ticket = ticket if ticket is not None else Ticket()
        self.record = record
        """Where the envelope was read, for dead letters (``None`` if not from a bus)."""
        self.crashes = 0
        self.answered = False
        self.refused = False
        """An output of its answer was refused by the bus (answered with an error since)."""
        self.sealed = False
        self.order_key: Hashable = None
        """The key this item holds in its inbox's ``KeyOrder`` while it is handled."""
        self.span: EnvelopeSpan | None = None
        """The span of its handling, while it is handled (tracing on, flow sampled)."""

    @property
    def source(self) -> Mapping[str, JsonValue] | None:
        """Topic, partition and offset the envelope was read from, if it was."""
        record = self.record
        if record is None:
            return None
        return {"topic": record.topic, "partition": record.partition, "offset": record.offset}

    def finish(self) -> None:
        """Say this envelope has handed over all its outputs (once; later calls do nothing)."""
        if not self.sealed:
            self.sealed = True
            self.ticket.seal()
