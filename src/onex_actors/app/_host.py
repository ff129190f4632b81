"""``RuntimeHost``: wires a bus consumer, a ``Dispatcher`` and a ``NodeRuntime`` together.

The runtime runs the data path (``onex_actors.runtime``: dispatch, inboxes, actors,
commit tracking, the delivery strategies); the host wires them and adds what a
deployment needs around them: topics, the runtime's own commands (discover, health)
and an orderly stop.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping

import trio
from pydantic import JsonValue

from onex_actors.core import (
    KEY_STATE_EXTRA_BYTES,
    BusError,
    ConfigError,
    ErrorInfo,
    OnexEnvelope,
    RoutingTable,
    cmd_topic,
    evt_topic,
)
from onex_actors.runtime import (
    RECORD_OVERHEAD,
    Bus,
    BusConsumer,
    ChangelogBus,
    CommitTracker,
    Dispatcher,
    ExactlyOnce,
    Handler,
    KeyedNode,
    NodeRuntime,
    OrchestratorHandler,
    ReducerHandler,
    RuntimeHealth,
    RuntimeLog,
    StateRestorer,
    TimerScanner,
    Tracer,
    open_node_runtime,
)

from ._config import HostConfig
from ._delivery_choice import delivery_for
from ._hand_over import NodeResume
from ._handlers import consumer_group

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
        *,
        tracer: Tracer | None = None,
    ) -> None:
        self.table = table
        self.tracer = tracer
        """Starts the spans of the envelopes handled (``None``: tracing is off)."""
        self.bus = bus
        self.handlers = handlers
        self.config = config
        self.commits: CommitTracker
        """The partition units: what is in flight per partition, what may be committed."""
        self.commits, self.outbox, self.delivery = delivery_for(config, bus, table.runtime_id)
        self.log = RuntimeLog(self.outbox, table.runtime_id)
        if isinstance(self.delivery, ExactlyOnce):
            self.delivery.tracer = tracer
        self.outbox.tracer = tracer
        self.group_id = consumer_group(config, table)
        self._runtime: NodeRuntime | None = None
        self._consumer: BusConsumer | None = None
        self._consuming = trio.CancelScope()
        self.stopped = trio.Event()
        self.dead_letters: Counter[tuple[str, str]] = Counter()
        """Dead letters the host wrote before any node (unknown node, undecodable...), by
        (dlq topic, reason)."""
        self.assigned = False
        """Whether the consumer has had partitions (set once, at the first assignment)."""
        self.listening: list[str] = []
        """Where the HTTP listener serves (``http.listen``), once it does."""
        self.draining = False
        """Set by :meth:`shutdown`: the host stopped consuming and finishes what it holds."""
        self.before_join: Callable[[], Awaitable[dict[str, NodeResume]]] | None = None
        """Run once the topics exist, before the consumer joins its group: where the
        hosted nodes' command partitions resume (the hand-over; set by the bootstrap)."""
        self.resumed: dict[str, NodeResume] = {}
        """Where each hosted node resumed, as the hand-over decided (empty without one)."""
        self.reducers: dict[str, KeyedNode] = {
            n: h for n, h in handlers.items() if isinstance(h, ReducerHandler | OrchestratorHandler)
        }
        """The hosted reducers and orchestrators, whose state the host restores and keeps
        in step."""
        self.restorer: StateRestorer | None = None
        """Restores the reducers' partitions before they are served (when there are any)."""
        self.timers = TimerScanner(self.reducers, self.outbox)
        """Fires the reducers' state timeouts that are due."""

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
            self.delivery.check(self.bus)
            await self.bus.ensure_topics(self.topics())
            await self._prepare_state()
            if self.before_join is not None:
                self.resumed = await self.before_join()
            async with (
                self.bus.consumer(
                    self.table.subscription, self.group_id, partitions=self.commits
                ) as consumer,
                open_node_runtime(
                    self.table, self.handlers, self.outbox, self.log, self.tracer
                ) as runtime,
                trio.open_nursery() as nursery,
            ):
                self._consumer, self._runtime = consumer, runtime
                nursery.start_soon(self.outbox.run)
                nursery.start_soon(self._stop_if_lost)
                nursery.start_soon(self.delivery.run, consumer)
                nursery.start_soon(self._note_assignment, consumer)
                nursery.start_soon(self.timers.run)
                if self.restorer is not None:
                    nursery.start_soon(self.restorer.run)
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
                await self.delivery.commit(consumer)
                if self.restorer is not None:
                    await self._save_checkpoints(self.restorer)
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

    async def _prepare_state(self) -> None:
        """Create or check the reducers' changelogs; follow the commits to keep state."""
        if not self.reducers:
            return
        bus = self.bus
        if not isinstance(bus, ChangelogBus):
            raise ConfigError(
                f"runtime {self.runtime_id!r} hosts reducer(s) {', '.join(self.reducers)}, "
                "whose state needs changelog topics, which this bus does not keep"
            )
        counts = await bus.prepare_changelogs(
            {handler.state_topic: handler.cmd_topic for handler in self.reducers.values()}
        )
        await bus.ensure_topics(list(counts))  # they exist now: this reads their size limits
        for handler in self.reducers.values():
            handler.partitions = counts[handler.state_topic]
            handler.record_limit = bus.record_limit(handler.state_topic)
            if isinstance(handler, ReducerHandler):
                _check_state_limit(handler)
        self.restorer = StateRestorer(
            bus,
            self.reducers,
            checkpoint_max_age_s=self.config.state.checkpoint_max_age_s,
            settled=self.delivery.settled,
        )
        self.commits.followers.append(self.restorer)

    async def _save_checkpoints(self, restorer: StateRestorer) -> None:
        """Checkpoint the on-disk stores after the last commit (a clean stop)."""
        try:
            saved = await restorer.checkpoint()
        except BusError as exc:
            logger.warning("state checkpoints not saved (restored whole next start): %s", exc)
            return
        if saved:
            logger.info("state checkpoints saved for %d partitions", saved)

    async def _stop_if_lost(self) -> None:
        await self.outbox.lost.wait()
        raise BusError(
            f"runtime {self.runtime_id!r} stopped: {self.outbox.lost_reason}. Nothing past "
            "that record was committed; it is consumed again after a restart"
        )

    async def _note_assignment(self, consumer: BusConsumer) -> None:
        await consumer.wait_assigned()
        self.assigned = True

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
            ticket_per_partition=self.delivery.ticket_per_partition,
        )
        while True:
            # tracked before anything awaits: a restore below may outlast a revocation
            admitted = self.delivery.admit(await consumer.poll(self.config.poll_max_records))
            if admitted.records:
                if self.restorer is not None:
                    await self.restorer.ready(admitted.records)
                await dispatcher.dispatch(admitted.records, admitted.marks)

    def _answer_runtime(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue] | ErrorInfo:
        op = envelope.payload.get("op")
        if op == "discover":
            return self.discovery()
        if op == "health":
            answer = self.runtime.health_check().as_json()
            answer["resumed"] = self.resumed_json()
            return answer  # type: ignore[return-value]
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
                    "family": node.runs_as,
                    "cmd_topic": node.cmd_topic,
                    "evt_topic": node.evt_topic,
                    "dlq_topic": node.dlq_topic,
                    "contract": node.contract.model_dump(mode="json"),
                    "resumed": self.resumed_json().get(node.node_id),
                }
                for node in self.table.hosted.values()
            ],
        }

    def resumed_json(self) -> dict[str, JsonValue]:
        """Where each hosted node resumed (group, source, offset per partition), as JSON."""
        return {node_id: resume.as_json() for node_id, resume in self.resumed.items()}  # type: ignore[misc]


def _check_state_limit(handler: ReducerHandler) -> None:
    """Refuse a reducer whose ``state.max_bytes`` lets a state outgrow its changelog's records."""
    limit = handler.record_limit
    max_bytes = handler.reducer.contract.state.max_bytes
    if limit is not None and max_bytes + KEY_STATE_EXTRA_BYTES + RECORD_OVERHEAD > limit:
        raise ConfigError(
            f"reducer {handler.node_id!r}: state.max_bytes is {max_bytes}, but its changelog "
            f"{handler.state_topic} takes records of at most {limit} bytes (the smaller of "
            "kafka.max_request_bytes and the topic's max.message.bytes), too few for a state "
            "that large: lower state.max_bytes, or raise both limits"
        )
