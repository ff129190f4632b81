"""``NodeRuntime``: the supervisor nursery that hosts every node actor of a runtime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import trio

from onex_actors.core import ConfigError, RoutingTable

from ._actor import NodeActor
from ._health import NodeStatus, RuntimeHealth
from ._outbox import Outbox, RuntimeLog
from ._ports import Handler
from ._supervisor import supervise
from ._tracing import Tracer

__all__ = ["NodeRuntime", "open_node_runtime"]

logger = logging.getLogger("onex_actors.runtime")


class NodeRuntime:
    """Hosts one supervised actor per node of a routing table.

    A crashing node is restarted by its policy and never takes its siblings or the
    runtime down. Use :func:`open_node_runtime` to run one inside a nursery.
    """

    def __init__(
        self,
        table: RoutingTable,
        handlers: Mapping[str, Handler],
        outbox: Outbox,
        log: RuntimeLog,
        tracer: Tracer | None = None,
    ) -> None:
        missing = sorted(set(table.hosted) - set(handlers))
        if missing:
            raise ConfigError(f"no handler for hosted node(s) {', '.join(missing)}")
        self.table = table
        self.outbox = outbox
        self.log = log
        self.actors: dict[str, NodeActor] = {
            node_id: NodeActor(hosted, handlers[node_id], outbox, log, tracer)
            for node_id, hosted in table.hosted.items()
        }
        self._finished = trio.Event()

    @property
    def runtime_id(self) -> str:
        """The runtime's id."""
        return self.table.runtime_id

    async def run(
        self, *, task_status: trio.TaskStatus[NodeRuntime] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start every node actor, report started once all are up, run until drained."""
        try:
            async with trio.open_nursery() as nursery:
                for actor in self.actors.values():
                    await nursery.start(supervise, actor)
                task_status.started(self)
        finally:
            self._finished.set()

    def actor(self, node_id: str) -> NodeActor:
        """Return the actor of ``node_id``; raise ``KeyError`` naming the hosted nodes."""
        try:
            return self.actors[node_id]
        except KeyError:
            hosted = ", ".join(sorted(self.actors))
            raise KeyError(f"node {node_id!r} is not hosted here (hosted: {hosted})") from None

    def kill(self, node_id: str) -> bool:
        """Kill the node's running actor as a crash from outside would (for tests and ops)."""
        return self.actor(node_id).kill()

    def health_check(self) -> RuntimeHealth:
        """Report every node's status, restarts and counters."""
        return RuntimeHealth(
            runtime_id=self.runtime_id,
            nodes={node_id: actor.health() for node_id, actor in self.actors.items()},
        )

    async def drain(self, timeout_s: float) -> bool:
        """Close every inbox and wait for the actors to finish what they hold.

        Returns whether everything finished within ``timeout_s``.
        """
        for actor in self.actors.values():
            actor.draining = True
            actor.inbox.close()
        with trio.move_on_after(timeout_s):
            await self._finished.wait()
        if not self._finished.is_set():
            for actor in self.actors.values():
                if actor.status is not NodeStatus.STOPPED:
                    logger.warning(
                        "node %s not drained after %g s: %s, %d queued (%d ready), %d in "
                        "flight, %d to redo",
                        actor.node_id,
                        timeout_s,
                        actor.status.value,
                        len(actor.inbox),
                        actor.inbox.items.ready,
                        len(actor.in_flight),
                        len(actor.redo),
                    )
        return self._finished.is_set()


@asynccontextmanager
async def open_node_runtime(
    table: RoutingTable,
    handlers: Mapping[str, Handler],
    outbox: Outbox,
    log: RuntimeLog,
    tracer: Tracer | None = None,
) -> AsyncIterator[NodeRuntime]:
    """Run a ``NodeRuntime`` in a nursery of its own for the duration of the block."""
    runtime = NodeRuntime(table, handlers, outbox, log, tracer)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        try:
            yield runtime
        finally:
            nursery.cancel_scope.cancel()
