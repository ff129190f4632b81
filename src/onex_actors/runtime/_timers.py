"""``TimerScanner``: fires the state timeouts that are due, from the state itself.

A key whose state has a timeout carries its deadline (event time) in its state, so in
its changelog: nothing else needs to be durable. Every ``interval_s`` the scanner looks
through the keys of the partitions this host serves and, for each deadline that has
passed on the wall clock, sends the reducer its timer command (``core.timer_command``),
keyed to the key's partition. That command's id derives from the key and the deadline,
so firing it again after a restart sends the same command, which the key folds once;
and a timer the key has left behind (it changed state since) is answered as stale.
The scan reads every key of the reducers that have timeouts: O(keys) per interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import trio

from onex_actors.core import timer_command

from ._outbox import Outbox
from ._reducer_node import ReducerHandler

__all__ = ["TimerScanner"]

logger = logging.getLogger("onex_actors.state")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TimerScanner:
    """Sends the timer commands of the reducers' due timeouts (see the module)."""

    def __init__(
        self,
        reducers: Mapping[str, ReducerHandler],
        outbox: Outbox,
        *,
        interval_s: float = 1.0,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.reducers = {
            node_id: handler
            for node_id, handler in reducers.items()
            if handler.reducer.contract.fsm is not None and handler.reducer.contract.fsm.timeouts
        }
        self.outbox = outbox
        self.interval_s = interval_s
        self.now = now
        self.fired: set[tuple[str, str, str]] = set()
        """(node, stored key, deadline) of each timer command sent by this process."""

    async def run(self) -> None:
        """Scan every ``interval_s`` until cancelled."""
        if not self.reducers:
            return
        while True:
            await trio.sleep(self.interval_s)
            await self.scan()

    async def scan(self) -> int:
        """Send the timer commands due now; return how many were sent."""
        now = self.now()
        sent = 0
        for node_id, handler in self.reducers.items():
            for name, state in handler.store.deadlines():
                assert state.deadline is not None
                if datetime.fromisoformat(state.deadline) > now:
                    continue
                fired = (node_id, name, state.deadline)
                if fired in self.fired:
                    continue
                self.fired.add(fired)
                tenant, _, key = name.partition("/")
                command = timer_command(node_id, tenant, key, state.deadline)
                await self.outbox.emit(command, handler.cmd_topic)
                sent += 1
        if sent:
            logger.debug("fired %d state timeouts", sent)
        return sent
