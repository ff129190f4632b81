"""``RuntimeHost``: consumes command records, routes them to node actors, commits safely.

Flow per record (SPEC §6): decode (bad → dlq) → route (rejected → dlq) → node inbox
→ handler → evt. A record is marked done once every envelope it caused is acknowledged,
and the consumer commits no further than the oldest record not yet done.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial

import trio
from pydantic import JsonValue

from onex_actors.core import (
    BusError,
    Delivery,
    EnvelopeError,
    ErrorInfo,
    OnexEnvelope,
    Rejection,
    RoutingTable,
    cmd_topic,
    dead_letter_of,
    dead_letter_of_record,
    decode_envelope,
    error_result_of,
    evt_topic,
    result_of,
    route,
)
from onex_actors.runtime import (
    Bus,
    BusConsumer,
    Handler,
    NodeRuntime,
    Outbox,
    Record,
    RuntimeHealth,
    RuntimeLog,
    Ticket,
    WorkItem,
    open_node_runtime,
)

from ._config import HostConfig
from ._feeder import NodeFeeder

__all__ = ["RuntimeHost"]

logger = logging.getLogger("onex_actors.host")


class RuntimeHost:
    """One runtime host: a bus consumer feeding a ``NodeRuntime``.

    Start it with ``await nursery.start(host.run)``; :meth:`shutdown` stops consuming,
    drains the nodes, commits and returns from :meth:`run`.
    """

    def __init__(
        self,
        table: RoutingTable,
        bus: Bus,
        handlers: Mapping[str, Handler],
        config: HostConfig,
    ) -> None:
        self.table = table
        self.bus = bus
        self.handlers = handlers
        self.config = config
        self.outbox = Outbox(bus, max_envelope_bytes=config.max_envelope_bytes)
        self.log = RuntimeLog(self.outbox, table.runtime_id)
        self.group_id = config.consumer_group or table.runtime.consumer_group or table.runtime_id
        self._runtime: NodeRuntime | None = None
        self._consumer: BusConsumer | None = None
        self._consuming = trio.CancelScope()
        self.stopped = trio.Event()
        self.feeders: dict[str, NodeFeeder] = {}

    @property
    def runtime_id(self) -> str:
        """The runtime's id."""
        return self.table.runtime_id

    @property
    def runtime(self) -> NodeRuntime:
        """The running ``NodeRuntime`` (only while :meth:`run` is running)."""
        if self._runtime is None:
            raise RuntimeError(f"runtime host {self.runtime_id!r} is not running")
        return self._runtime

    def health_check(self) -> RuntimeHealth:
        """Report every node's health."""
        return self.runtime.health_check()

    def topics(self) -> list[str]:
        """Every topic this host consumes or produces."""
        topics = [self.table.log_topic, self.table.runtime_dlq_topic, evt_topic(self.runtime_id)]
        topics.append(cmd_topic(self.runtime_id))
        for node in self.table.hosted.values():
            topics += [node.cmd_topic, node.evt_topic, node.dlq_topic]
        return topics

    def shutdown(self) -> None:
        """Stop consuming; :meth:`run` then drains, commits and returns."""
        self._consuming.cancel()

    async def run(
        self, *, task_status: trio.TaskStatus[RuntimeHost] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until :meth:`shutdown`; report started once consuming."""
        try:
            await self.bus.ensure_topics(self.topics())
            async with (
                self.bus.consumer(self.table.patterns, self.group_id) as consumer,
                open_node_runtime(self.table, self.handlers, self.outbox, self.log) as runtime,
                trio.open_nursery() as nursery,
            ):
                self._consumer, self._runtime = consumer, runtime
                nursery.start_soon(self.outbox.run)
                nursery.start_soon(self._stop_if_lost)
                nursery.start_soon(self._commit_periodically, consumer)
                await self.log.event(
                    "runtime_started",
                    {
                        "contract_id": self.table.runtime.contract_id,
                        "nodes": list(self.table.hosted),
                    },
                )
                task_status.started(self)
                with self._consuming:
                    await self._consume(consumer, runtime)
                drained = await runtime.drain(self.config.shutdown_timeout_s)
                acknowledged = await self.outbox.wait_acknowledged(self.config.shutdown_timeout_s)
                await consumer.commit()
                await self.log.event(
                    "runtime_stopped",
                    {
                        "drained": drained,
                        "acknowledged": acknowledged,
                        "failed_records": self.outbox.failed,
                    },
                )
                nursery.cancel_scope.cancel()
        finally:
            self._runtime = None
            self.stopped.set()

    async def _stop_if_lost(self) -> None:
        await self.outbox.lost.wait()
        raise BusError(
            f"runtime {self.runtime_id!r} stopped: {self.outbox.lost_reason}. Nothing past "
            "that record was committed; it is consumed again after a restart"
        )

    async def _commit_periodically(self, consumer: BusConsumer) -> None:
        while True:
            await trio.sleep(self.config.commit_interval_s)
            await consumer.commit()

    async def _consume(self, consumer: BusConsumer, runtime: NodeRuntime) -> None:
        self.feeders = {
            node_id: NodeFeeder(
                node_id,
                runtime,
                consumer,
                self.log,
                high=node.contract.inbox_size,
                low=node.contract.inbox_size // 2,
            )
            for node_id, node in self.table.hosted.items()
        }
        async with trio.open_nursery() as nursery:
            for feeder in self.feeders.values():
                nursery.start_soon(feeder.run)
            while True:
                for record in await consumer.poll(self.config.poll_max_records):
                    await self._dispatch(record, consumer)

    async def _dispatch(self, record: Record, consumer: BusConsumer) -> None:
        ticket = Ticket(partial(consumer.mark_done, record))
        source: dict[str, JsonValue] = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
        }
        try:
            if record.unreadable is not None:
                raise EnvelopeError(
                    f"record at {record.describe()} could not be read by the Kafka client: "
                    f"{record.unreadable}",
                    reason="unreadable_record",
                )
            envelope = decode_envelope(
                record.value, max_bytes=self.config.max_envelope_bytes, source=record.describe()
            )
        except EnvelopeError as exc:
            error = ErrorInfo(type=exc.reason, message=str(exc), attempts=0)
            dlq = dead_letter_of_record(
                self.runtime_id,
                record.value,
                error,
                source=source,
                max_raw_bytes=self.outbox.envelope_limit(self.table.runtime_dlq_topic) // 8,
            )
            await self._dead_letter(dlq, self.table.runtime_dlq_topic, ticket)
            ticket.seal()
            return
        decision = route(envelope, self.table, topic=record.topic)
        if isinstance(decision, Delivery):
            feeder = self.feeders[decision.node.node_id]
            await feeder.put(WorkItem(envelope, ticket, source), record.topic_partition)
        elif isinstance(decision, Rejection):
            await self._reject(envelope, decision, ticket, source)
        else:
            await self._runtime_command(envelope, ticket, source)

    async def _reject(
        self,
        envelope: OnexEnvelope,
        rejection: Rejection,
        ticket: Ticket,
        source: Mapping[str, JsonValue],
    ) -> None:
        error = ErrorInfo(type=rejection.reason.value, message=rejection.message, attempts=0)
        if envelope.node_id in self.table.hosted:
            node = self.table.hosted[envelope.node_id]
            await self.outbox.emit(error_result_of(envelope, error), node.evt_topic, ticket)
        dlq = dead_letter_of(
            envelope,
            error,
            source=source,
            max_envelope_bytes=self.outbox.envelope_limit(rejection.dlq_topic),
        )
        await self._dead_letter(dlq, rejection.dlq_topic, ticket)
        ticket.seal()

    async def _dead_letter(self, dlq: OnexEnvelope, topic: str, ticket: Ticket) -> None:
        await self.outbox.emit(dlq, topic, ticket)
        assert dlq.error is not None
        await self.log.event(
            "dead_letter",
            {"topic": topic, "error_type": dlq.error.type, "message": dlq.error.message},
            level=logging.WARNING,
        )

    async def _runtime_command(
        self, envelope: OnexEnvelope, ticket: Ticket, source: Mapping[str, JsonValue]
    ) -> None:
        op = envelope.payload.get("op")
        reply_topic = evt_topic(self.runtime_id)
        payload: dict[str, JsonValue]
        if op == "discover":
            payload = self.discovery()
        elif op == "health":
            payload = self.runtime.health_check().as_json()  # type: ignore[assignment]
        else:
            error = ErrorInfo(
                type="unknown_op",
                message=f"runtime {self.runtime_id!r} knows ops 'discover' and 'health', "
                f"not {op!r}",
            )
            await self.outbox.emit(error_result_of(envelope, error), reply_topic, ticket)
            await self._dead_letter(
                dead_letter_of(
                    envelope,
                    error,
                    source=source,
                    max_envelope_bytes=self.outbox.envelope_limit(self.table.runtime_dlq_topic),
                ),
                self.table.runtime_dlq_topic,
                ticket,
            )
            ticket.seal()
            return
        await self.outbox.emit(
            result_of(envelope, payload, contract_id=self.table.runtime.contract_id),
            reply_topic,
            ticket,
        )
        ticket.seal()

    def discovery(self) -> dict[str, JsonValue]:
        """Describe the hosted nodes and their contracts (the ``discover`` answer)."""
        return {
            "runtime_id": self.runtime_id,
            "contract_id": self.table.runtime.contract_id,
            "nodes": [
                {
                    "node_id": node.node_id,
                    "contract_id": node.contract.contract_id,
                    "kind": node.contract.kind.value,
                    "family": node.family.value,
                    "cmd_topic": node.cmd_topic,
                    "evt_topic": node.evt_topic,
                    "dlq_topic": node.dlq_topic,
                    "contract": node.contract.model_dump(mode="json"),
                }
                for node in self.table.hosted.values()
            ],
        }
