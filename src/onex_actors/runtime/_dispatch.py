"""``Dispatcher``: each poll, decoded and routed in one pass, into the nodes' inboxes.

Flow per poll (SPEC §6): decode (bad → dlq) → route (rejected → dlq) → one slice per
node into its inbox → handler → evt. A slice's records are done once every envelope
of the slice is answered and acknowledged; the ``CommitTracker`` then lets the
consumer commit up to (never past) the oldest record not done.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from pydantic import JsonValue

from onex_actors.core import (
    ErrorInfo,
    OnexEnvelope,
    Rejection,
    RoutingTable,
    dead_letter_of,
    dead_letter_of_record,
    error_result_of,
    evt_topic,
    result_of,
    route_batch,
)

from ._commits import CommitTracker, OffsetMarks
from ._item import WorkItem
from ._node_runtime import NodeRuntime
from ._outbox import Outbox, RuntimeLog
from ._ports import Record, TopicPartition
from ._ticket import Ticket

__all__ = ["Dispatcher", "RuntimeAnswer"]

RuntimeAnswer = Callable[[OnexEnvelope], "Mapping[str, JsonValue] | ErrorInfo"]
"""Answers a command addressed to the runtime itself: a result payload, or why not."""


class Dispatcher:
    """Routes each poll's records into node inboxes; answers the rest itself."""

    def __init__(
        self,
        table: RoutingTable,
        runtime: NodeRuntime,
        outbox: Outbox,
        log: RuntimeLog,
        tracker: CommitTracker,
        answer_runtime: RuntimeAnswer,
        *,
        max_envelope_bytes: int,
        dead_letters: Counter[tuple[str, str]] | None = None,
        ticket_per_partition: bool = False,
    ) -> None:
        self.table = table
        self.runtime = runtime
        self.outbox = outbox
        self.log = log
        self.tracker = tracker
        self.answer_runtime = answer_runtime
        self.max_envelope_bytes = max_envelope_bytes
        self.runtime_id = table.runtime_id
        self.dead_letters = dead_letters if dead_letters is not None else Counter()
        """Dead letters the dispatcher wrote itself, by (dlq topic, reason)."""
        self.ticket_per_partition = ticket_per_partition
        """One ticket per partition of a slice (``delivery: exactly_once``): a ticket then
        settles only records of one partition, so when the done prefix passes them the
        same transaction carries their outputs and their offsets."""

    async def dispatch(self, records: Sequence[Record], marks: OffsetMarks) -> None:
        """Route one poll: a slice into each node's inbox, the rest answered here.

        ``marks`` settle ``records`` (the delivery strategy tracked them when it
        admitted them).
        """
        routed = route_batch(records, self.table, max_envelope_bytes=self.max_envelope_bytes)
        for node_id, entries in routed.deliveries.items():
            items = []
            for group in self._ticket_groups(entries, records):
                slice_marks = [marks[index] for index, _ in group]
                ticket = Ticket(
                    partial(self.tracker.done, slice_marks), parts=len(group), marks=slice_marks
                )
                items += [WorkItem(envelope, ticket, records[index]) for index, envelope in group]
            read_from = {(records[index].topic, records[index].partition) for index, _ in entries}
            partitions = [TopicPartition(topic, partition) for topic, partition in read_from]
            await self.runtime.actor(node_id).inbox.put(items, partitions)
        rest = len(routed.undecodable) + len(routed.rejections) + len(routed.runtime_commands)
        if not rest:
            return
        own: OffsetMarks = [marks[index] for index, _ in routed.undecodable]
        own += [marks[index] for index, _, _ in routed.rejections]
        own += [marks[index] for index, _ in routed.runtime_commands]
        shared = Ticket(partial(self.tracker.done, own), parts=rest, marks=own)

        def ticket_of(index: int) -> Ticket:
            if not self.ticket_per_partition:
                return shared
            mark = marks[index]
            return Ticket(partial(self.tracker.done, [mark]), marks=[mark])

        for index, exc in routed.undecodable:
            ticket = ticket_of(index)
            record = records[index]
            error = ErrorInfo(type=exc.reason, message=str(exc), attempts=0)
            dlq = dead_letter_of_record(
                self.runtime_id,
                record.value,
                error,
                source=_source(record),
                max_raw_bytes=self.outbox.envelope_limit(self.table.runtime_dlq_topic) // 8,
            )
            await self._dead_letter(dlq, self.table.runtime_dlq_topic, ticket)
            ticket.seal()
        for index, envelope, rejection in routed.rejections:
            ticket = ticket_of(index)
            await self._reject(envelope, rejection, ticket, records[index])
            ticket.seal()
        for index, envelope in routed.runtime_commands:
            ticket = ticket_of(index)
            await self._runtime_command(envelope, ticket, records[index])
            ticket.seal()

    def _ticket_groups(
        self, entries: Sequence[tuple[int, OnexEnvelope]], records: Sequence[Record]
    ) -> list[Sequence[tuple[int, OnexEnvelope]]]:
        """Split ``entries`` into the groups one ticket covers each (one per partition)."""
        if not self.ticket_per_partition:
            return [entries]
        groups: dict[tuple[str, int], list[tuple[int, OnexEnvelope]]] = {}
        for entry in entries:
            record = records[entry[0]]
            groups.setdefault((record.topic, record.partition), []).append(entry)
        return list(groups.values())

    async def _reject(
        self, envelope: OnexEnvelope, rejection: Rejection, ticket: Ticket, record: Record
    ) -> None:
        error = ErrorInfo(type=rejection.reason.value, message=rejection.message, attempts=0)
        if envelope.node_id in self.table.hosted:
            node = self.table.hosted[envelope.node_id]
            await self.outbox.emit(error_result_of(envelope, error), node.evt_topic, ticket)
        dlq = dead_letter_of(
            envelope,
            error,
            source=_source(record),
            max_envelope_bytes=self.outbox.envelope_limit(rejection.dlq_topic),
        )
        await self._dead_letter(dlq, rejection.dlq_topic, ticket)

    async def _dead_letter(self, dlq: OnexEnvelope, topic: str, ticket: Ticket) -> None:
        await self.outbox.emit(dlq, topic, ticket)
        assert dlq.error is not None
        self.dead_letters[topic, dlq.error.type] += 1
        await self.log.event(
            "dead_letter",
            {
                "topic": topic,
                "correlation_id": str(dlq.correlation_id),
                "error_type": dlq.error.type,
                "message": dlq.error.message,
            },
            level=logging.WARNING,
        )

    async def _runtime_command(
        self, envelope: OnexEnvelope, ticket: Ticket, record: Record
    ) -> None:
        reply_topic = evt_topic(self.runtime_id)
        answer = self.answer_runtime(envelope)
        if isinstance(answer, ErrorInfo):
            await self.outbox.emit(error_result_of(envelope, answer), reply_topic, ticket)
            dlq = dead_letter_of(
                envelope,
                answer,
                source=_source(record),
                max_envelope_bytes=self.outbox.envelope_limit(self.table.runtime_dlq_topic),
            )
            await self._dead_letter(dlq, self.table.runtime_dlq_topic, ticket)
            return
        contract_id = self.table.runtime.contract_id
        await self.outbox.emit(
            result_of(envelope, answer, contract_id=contract_id), reply_topic, ticket
        )


def _source(record: Record) -> dict[str, JsonValue]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}
