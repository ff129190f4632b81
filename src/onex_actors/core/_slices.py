"""Decoding and routing a whole poll in one pass (pure).

``route_batch`` turns the records of one poll into slices: per hosted node, its
envelopes in the order they were read (so partition order is kept), plus the records
that are not envelopes, the envelopes that are rejected and those addressed to the
runtime itself. Each entry keeps the index of its record in the poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from ._codec import decode_envelope
from ._envelope import OnexEnvelope
from ._errors import EnvelopeError
from ._routing import Delivery, Rejection, RoutingTable, route

__all__ = ["CommandRecord", "RoutedBatch", "route_batch"]


class CommandRecord(Protocol):
    """What routing needs of a consumed record."""

    @property
    def topic(self) -> str:
        """The topic it was read from."""
        ...

    @property
    def value(self) -> bytes | None:
        """Its value (``None`` for a tombstone, or a record the client could not read)."""
        ...

    @property
    def unreadable(self) -> str | None:
        """Why the client could not read it, if it could not."""
        ...

    def describe(self) -> str:
        """Where it came from (topic, partition, offset), for error messages."""
        ...


@attrs.define
class RoutedBatch:
    """One poll, decoded and routed; each entry starts with its record's index."""

    deliveries: dict[str, list[tuple[int, OnexEnvelope]]] = attrs.Factory(dict)
    """Per hosted node, its envelopes in the order they were read."""
    rejections: list[tuple[int, OnexEnvelope, Rejection]] = attrs.Factory(list)
    runtime_commands: list[tuple[int, OnexEnvelope]] = attrs.Factory(list)
    undecodable: list[tuple[int, EnvelopeError]] = attrs.Factory(list)
    """Records that are not envelopes (or could not be read at all), with why."""


def route_batch(
    records: Sequence[CommandRecord], table: RoutingTable, *, max_envelope_bytes: int
) -> RoutedBatch:
    """Decode and route every record of a poll; never raises for a bad record."""
    routed = RoutedBatch()
    deliveries = routed.deliveries
    for index, record in enumerate(records):
        try:
            if record.unreadable is not None:
                raise EnvelopeError(
                    f"record at {record.describe()} could not be read by the Kafka client: "
                    f"{record.unreadable}",
                    reason="unreadable_record",
                )
            try:
                envelope = decode_envelope(record.value, max_bytes=max_envelope_bytes)
            except EnvelopeError:  # again, naming where the record came from
                envelope = decode_envelope(
                    record.value, max_bytes=max_envelope_bytes, source=record.describe()
                )
        except EnvelopeError as exc:
            routed.undecodable.append((index, exc))
            continue
        decision = route(envelope, table, topic=record.topic)
        if type(decision) is Delivery:
            node_id = decision.node.node_id
            slice_ = deliveries.get(node_id)
            if slice_ is None:
                slice_ = deliveries[node_id] = []
            slice_.append((index, envelope))
        elif isinstance(decision, Rejection):
            routed.rejections.append((index, envelope, decision))
        else:
            routed.runtime_commands.append((index, envelope))
    return routed
