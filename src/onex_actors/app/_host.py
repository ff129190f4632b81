"""``RuntimeHost``: wires a bus consumer, a ``Dispatcher`` and a ``NodeRuntime`` together.

The runtime runs the data path (``onex_actors.runtime``: dispatch, inboxes, actors,
commit tracking); the host adds what a deployment needs around it: topics, the
runtime's own commands (discover, health), periodic commits and an orderly stop.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping

import trio
from pydantic import JsonValue

from onex_actors.core import (
    BusError,
    ConfigError,
    ErrorInfo,
    OnexEnvelope,
    RoutingTable,
    TransactionAborted,
    cmd_topic,
    evt_topic,
)
from onex_actors.runtime import (
    Bus,
    BusConsumer,
    CommitTracker,
    Dispatcher,
    Handler,
    NodeRuntime,
    Outbox,
    RewindableConsumer,
    RuntimeHealth,
    RuntimeLog,
    TransactionalBus,
    open_node_runtime,
)

from ._config import HostConfig

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
        self.transactional = config.delivery.mode == "exactly_once"
        """Whether results and offsets are committed in Kafka transactions."""
        self.outbox = Outbox(
            bus, max_envelope_bytes=config.max_envelope_bytes, transactional=self.transactional
        )
        self._commit_lock = trio.Lock()
        self._revocations_handled = 0
        """Revocations (as the consumer's client counts them) read again after."""
        self.aborted_transactions = 0
        self.log = RuntimeLog(self.outbox, table.runtime_id)
        self.group_id = config.consumer_group or table.runtime.consumer_group or table.runtime_id
        self._runtime: NodeRuntime | None = None
        self._consumer: BusConsumer | None = None
        self._consuming = trio.CancelScope()
        self.stopped = trio.Event()
        self.commits = CommitTracker()
        """What is in flight per partition, and what may be committed."""
        self.dead_letters: Counter[tuple[str, str]] = Counter()
        """Dead letters the host wrote before any node (unknown node, undecodable...), by
        (dlq topic, reason)."""
        self.assigned = False
        """Whether the consumer has had partitions (set once, at the first assignment)."""
        self.listening: list[str] = []
        """Where the HTTP listener serves (``http.listen``), once it does."""
        self.draining = False
        """Set by :meth:`shutdown`: the host stopped consuming and finishes what it holds."""

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

    @property
    def runtime_or_none(self) -> NodeRuntime | None:
        """The running ``NodeRuntime``, or None before it started and after it stopped."""
        return self._runtime

    @property
    def consumer_or_none(self) -> BusConsumer | None:
        """The bus consumer while :meth:`run` runs, else None."""
        return self._consumer

    def dlq_owners(self) -> dict[str, str]:
        """Each dead-letter topic this host writes, and the node (or runtime) it belongs to."""
        owners = {node.dlq_topic: node_id for node_id, node in self.table.hosted.items()}
        owners[self.table.runtime_dlq_topic] = self.runtime_id
        return owners

    def health_check(self) -> RuntimeHealth:
        """Report every node's health."""
        return self.runtime.health_check()

    def topics(self) -> list[str]:
        """Every topic this host consumes or produces."""
        topics = [self.table.log_topic, self.table.runtime_dlq_topic, evt_topic(self.runtime_id)]
        topics.append(cmd_topic(self.runtime_id))
        for node in self.table.hosted.values():
            topics += [node.cmd_topic, node.evt_topic, node.dlq_topic]
        # topics subscribed by name, so the subscription holds partitions from the start
        topics += [p.text for p in self.table.subscription if not {"*", "#"} & set(p.text)]
        return list(dict.fromkeys(topics))

    def shutdown(self) -> None:
        """Stop consuming; :meth:`run` then drains, commits and returns."""
        self.draining = True
        self._consuming.cancel()

    async def wait_assigned(self, timeout_s: float) -> bool:
        """Wait until the consumer owns partitions; False when ``timeout_s`` passed first."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("the host is not running")
        with trio.move_on_after(timeout_s):
            await consumer.wait_assigned()
            self.assigned = True
            return True
        return False

    async def run(
        self, *, task_status: trio.TaskStatus[RuntimeHost] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until :meth:`shutdown`; report started once consuming."""
        try:
            if self.transactional and not (
                isinstance(self.bus, TransactionalBus) and self.bus.transactional
            ):
                raise ConfigError(
                    "delivery.mode is exactly_once but the bus has no transactions: use "
                    "bus.kind: kafka (either Kafka client), or delivery.mode: "
                    "at_least_once"
                )
            await self.bus.ensure_topics(self.topics())
            async with (
                self.bus.consumer(
                    self.table.subscription, self.group_id, done_offsets=self.commits.done_offsets
                ) as consumer,
                open_node_runtime(self.table, self.handlers, self.outbox, self.log) as runtime,
                trio.open_nursery() as nursery,
            ):
                self._consumer, self._runtime = consumer, runtime
                nursery.start_soon(self.outbox.run)
                nursery.start_soon(self._stop_if_lost)
                nursery.start_soon(self._commit_periodically, consumer)
                if self.transactional:
                    nursery.start_soon(self._read_again_after_revocations, consumer)
                nursery.start_soon(self._note_assignment, consumer)
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
                await self._commit(consumer)
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

    async def _note_assignment(self, consumer: BusConsumer) -> None:
        await consumer.wait_assigned()
        self.assigned = True

    async def _commit_periodically(self, consumer: BusConsumer) -> None:
        if self.transactional:
            delivery = self.config.delivery
            while True:  # every interval, or sooner when a transaction's worth waits
                deadline = trio.current_time() + delivery.transaction_interval_s
                with trio.move_on_at(deadline):
                    await self.outbox.wait_held(delivery.max_transaction_records)
                await self._commit(consumer)
                if self.outbox.held >= delivery.max_transaction_records:
                    await trio.sleep_until(deadline)  # held behind a gap: no hurry
        while True:
            await trio.sleep(self.config.commit_interval_s)
            await self._commit(consumer)

    async def _commit(self, consumer: BusConsumer) -> None:
        if not self.transactional:
            await self.commits.commit(consumer)
            return
        async with self._commit_lock:
            try:
                await self._commit_transaction(consumer)
            finally:
                self.commits.end_round()

    async def _commit_transaction(self, consumer: BusConsumer) -> None:
        """Commit what is done with its outputs in one transaction, then open the next.

        The transaction carries exactly the held outputs whose input records lie in the
        done prefix that its offsets commit (and runtime log events). An aborted one is
        read again from the last committed offsets.
        """
        assert isinstance(self.bus, TransactionalBus)
        if not isinstance(consumer, RewindableConsumer):
            raise BusError(f"runtime {self.runtime_id!r}: this consumer cannot read again")
        # the metadata first: a transaction of a generation that lost partitions since
        # is fenced; one of a newer generation comes with a revocation handled here
        state = await consumer.transaction_state()
        if state.revocations > self._revocations_handled:
            self._revocations_handled = state.revocations
            await self._read_again(consumer)
            return
        metadata = state.group_metadata
        if metadata is None:  # between generations: the next round commits
            await trio.lowlevel.checkpoint()
            return
        # records fetched during a rebalance of partitions that then moved: void
        self.commits.retire_except(state.owned)
        due = self.commits.due()
        released = self.outbox.release()
        if not due and not released:
            await trio.lowlevel.checkpoint()
            return
        await self.outbox.send_released(released)
        self.commits.committing = {
            tp: max(offset, self.commits.committed_offsets().get(tp, 0))
            for tp, offset in due.items()
        }
        try:
            await self.bus.commit_transaction(due, metadata)
        except TransactionAborted as exc:
            self.commits.committing = {}
            self.aborted_transactions += 1
            logger.warning("%s (pid %d): %s", self.runtime_id, os.getpid(), exc)
            await self._read_again(consumer)
            return
        self.commits.committed(due)
        self.commits.committing = {}
        self.commits.commits += 1

    async def _read_again(self, consumer: BusConsumer) -> None:
        """Void what is in flight and read every partition again from its last commit."""
        if not isinstance(consumer, RewindableConsumer):
            raise BusError(f"runtime {self.runtime_id!r}: this consumer cannot read again")
        self.commits.retire_all()
        self.outbox.drop_void()
        await consumer.rewind()

    async def _read_again_after_revocations(self, consumer: BusConsumer) -> None:
        """After a rebalance took partitions away, read again from the last commit.

        The records in flight may now belong to another member, which reads them from
        the last commit too: their outputs must never be committed here. Batches this
        member fetched before the rebalance are dropped with them.
        """
        if not isinstance(consumer, RewindableConsumer):
            raise ConfigError(
                f"runtime {self.runtime_id!r}: delivery.mode exactly_once needs a consumer "
                "that can read its partitions again (both Kafka clients do)"
            )
        seen = 0
        while True:
            seen = await consumer.wait_revocation(seen)
            async with self._commit_lock:
                state = await consumer.transaction_state()
                if state.revocations > self._revocations_handled:
                    self._revocations_handled = state.revocations
                    await self._read_again(consumer)

    async def _consume(self, consumer: BusConsumer, runtime: NodeRuntime) -> None:
        for actor in runtime.actors.values():
            actor.inbox.attach(consumer, self.log)
        dispatcher = Dispatcher(
            self.table,
            runtime,
            self.outbox,
            self.log,
            self.commits,
            self._answer_runtime,
            max_envelope_bytes=self.config.max_envelope_bytes,
            dead_letters=self.dead_letters,
            ticket_per_partition=self.transactional,
        )
        if not self.transactional:
            while True:
                await dispatcher.dispatch(await consumer.poll(self.config.poll_max_records))
        while True:
            # a client that reset its position from an offset fetch older than this
            # host's last transaction reads committed records again: their results are
            # visible already, so they are never handled (or answered) twice
            records = self.commits.uncommitted(await consumer.poll(self.config.poll_max_records))
            if records:
                await dispatcher.dispatch(records)

    def _answer_runtime(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue] | ErrorInfo:
        op = envelope.payload.get("op")
        if op == "discover":
            return self.discovery()
        if op == "health":
            return self.runtime.health_check().as_json()  # type: ignore[return-value]
        return ErrorInfo(
            type="unknown_op",
            message=f"runtime {self.runtime_id!r} knows ops 'discover' and 'health', not {op!r}",
        )

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
