"""``NodeActor``: one hosted node as a trio actor with a bounded inbox (SPEC §6).

The actor's state (inbox, envelopes in flight, counters) outlives each run, so the
supervisor can restart the actor and hand it back the envelopes it held.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import trio

from onex_actors.core import ActorExit, ErrorInfo, HostedNode

from ._health import NodeHealth, NodeStatus
from ._item import WorkItem
from ._outbox import Outbox, RuntimeLog
from ._ports import Handler
from ._tracing import Tracer
from ._work import BATCH_LIMIT, NodeWork

__all__ = ["NodeActor"]


class NodeActor(NodeWork):
    """A hosted node: its work (``NodeWork``), run, killed and restarted as one actor."""

    def __init__(
        self,
        hosted: HostedNode,
        handler: Handler,
        outbox: Outbox,
        log: RuntimeLog,
        tracer: Tracer | None = None,
    ) -> None:
        super().__init__(hosted, handler, outbox, log, tracer)
        self.status = NodeStatus.STARTING
        self.healthy = True
        self.draining = False
        self.restarts = 0
        self.last_error: str | None = None
        self.restart_latencies: deque[float] = deque(maxlen=100_000)
        """Seconds from a kill or crash to the actor running again (``perf_counter``)."""
        self._scope: trio.CancelScope | None = None
        self._ended_at: float | None = None
        self._running = trio.Event()

    def kill(self) -> bool:
        """Cancel the running actor as an outside kill would; return whether it was running."""
        if self._scope is None or self._scope.cancel_called:
            return False
        self._scope.cancel()
        self._running = trio.Event()
        return True

    async def wait_running(self) -> None:
        """Wait until the actor is running (returns at once if it is)."""
        await self._running.wait()

    def health(self) -> NodeHealth:
        """Return this node's health report."""
        return NodeHealth(
            node_id=self.node_id,
            status=self.status,
            healthy=self.healthy,
            restarts=self.restarts,
            inbox_depth=len(self.inbox),
            in_flight=len(self.in_flight) + len(self.redo),
            handled_ok=self.handled_ok,
            handled_error=self.handled_error,
            dead_letters=self.dead_letters,
            duplicates_skipped=self.duplicates_skipped,
            last_error=self.last_error,
        )

    async def run_once(self, on_started: Callable[[], None]) -> ActorExit:
        """Run the actor until it ends, and say how it ended."""
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                self.status = NodeStatus.RUNNING
                if self._ended_at is not None:
                    self.restart_latencies.append(time.perf_counter() - self._ended_at)
                self._running.set()
                on_started()
                async with trio.open_nursery() as nursery:
                    for _ in range(self.contract.concurrency):
                        nursery.start_soon(self._worker)
        except Exception as exc:  # an escaping exception is a crash; the supervisor decides
            self.last_error = _describe_crash(exc)
            logging.getLogger("onex_actors.runtime").debug(
                "node %s crashed", self.node_id, exc_info=True
            )
            return self._ended(ActorExit.CRASHED)
        finally:
            self._scope = None
            if self._running.is_set():
                self._running = trio.Event()
        return self._ended(ActorExit.KILLED if scope.cancelled_caught else ActorExit.NORMAL)

    def _ended(self, exit: ActorExit) -> ActorExit:
        self._ended_at = time.perf_counter()
        return exit

    async def requeue_in_flight(self) -> None:
        """Hand the envelopes held at a crash or kill back to the next run.

        They go back in the order they were taken, ahead of what still waits, and keep
        their keys, so envelopes of one key keep their order. Only a crash counts against
        an envelope, and only against the ones whose handling raised it (``NodeWork``
        counts it): one at ``poison_threshold`` crashes is dead-lettered as poison.
        """
        held = list(self.in_flight)
        self.in_flight.clear()
        back: list[WorkItem] = []
        for item in held:
            if item.crashes >= self.contract.restart.poison_threshold:
                error = ErrorInfo(
                    type="poison",
                    message=f"handling the envelope crashed node {self.node_id!r} "
                    f"{item.crashes} times; last: {self.last_error}",
                    retryable=False,
                    attempts=item.crashes,
                )
                await self._fail(item, error)
                self.inbox.release([item])
            else:
                back.append(item)
                if item.span is not None:
                    item.span.event("actor_restarted", {"crashes": item.crashes})
        self.redo.extendleft(reversed(back))

    async def reject_remaining(self, reason: str) -> None:
        """Answer every held and queued envelope with an error: the node is stopped.

        Runs until the inbox is closed, so nothing put in it by the dispatcher waits forever.
        """
        error = ErrorInfo(
            type="node_stopped", message=f"node {self.node_id!r} is stopped: {reason}"
        )
        held = [*self.redo, *self.in_flight]
        for item in held:
            await self._fail(item, error)
        self.redo.clear()
        self.in_flight.clear()
        self.inbox.release(held)
        while True:
            try:
                items = await self.inbox.take(BATCH_LIMIT)
            except trio.EndOfChannel:
                return
            self.in_flight.update(dict.fromkeys(items))
            for item in items:
                await self._fail(item, error)
                self.in_flight.pop(item, None)
            self.inbox.release(items)


def _describe_crash(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
