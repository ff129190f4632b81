"""``TimerScanner``: fires the state timers that are due, from the state itself.

A key whose state has a timeout carries its deadline (event time) in its state, and a key
of a reducer with ``state.ttl_s`` expires that long after it last changed: so both live in
the changelog, and nothing else need be durable. The keyed store indexes when each key is
next due; every ``interval_s`` the scanner reads that index and, for each key due on the
wall clock, sends the reducer the timer command (``core.timer_command``): ``expire``
(the key is deleted, with a tombstone) once its TTL has run out, else ``timeout``, keyed to
the key's partition (under a test's ``MockClock``, the wall clock moves as trio's does).
A command's id derives from the key, the timer and the deadline, so
firing it again after a restart sends the same command, which the key folds once; and a
timer the key has left behind (it changed since) is answered as stale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial

import trio
import trio.testing

from onex_actors.core import EXPIRE_TIMER, TIMEOUT_TRIGGER, KeyState, timer_command

from ._keyed import KeyedNode
from ._outbox import Outbox

__all__ = ["TimerScanner"]

logger = logging.getLogger("onex_actors.state")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _following_trio_clock() -> Callable[[], datetime]:
    """Return a wall clock that moves as trio's clock does, from the wall time now.

    Under a ``MockClock`` (a test's ``autojump_clock``) trio's time runs ahead of the
    wall's: a test that sleeps past a state's timeout finds it fired, taking no real time.
    """
    wall, trio_then = datetime.now(UTC), trio.current_time()
    return lambda: wall + timedelta(seconds=trio.current_time() - trio_then)


class TimerScanner:
    """Sends the timer commands of the reducers' due timeouts (see the module)."""

    def __init__(
        self,
        reducers: Mapping[str, KeyedNode],
        outbox: Outbox,
        *,
        interval_s: float = 1.0,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.reducers = {node_id: h for node_id, h in reducers.items() if h.timed}
        self.outbox = outbox
        self.interval_s = interval_s
        self.now = now
        self.fired: dict[tuple[str, str], tuple[str, str]] = {}
        """(node, stored key) → (timer, deadline) of each timer sent and still due."""
        self._refused: set[tuple[tuple[str, str], tuple[str, str]]] = set()
        """Timers sent whose command the bus failed to produce: the next scan sends them."""

    async def run(self) -> None:
        """Scan every ``interval_s`` until cancelled."""
        if not self.reducers:
            return
        if self.now is _utc_now and isinstance(
            trio.lowlevel.current_clock(), trio.testing.MockClock
        ):
            self.now = _following_trio_clock()
        while True:
            await trio.sleep(self.interval_s)
            await self.scan()

    async def scan(self) -> int:
        """Send the timer commands due now; return how many were sent."""
        now = self.now()
        now_s = now.timestamp()
        sent = 0
        still_due: dict[tuple[str, str], tuple[str, str]] = {}
        for node_id, handler in self.reducers.items():
            for _, name, state in list(handler.store.due(now_s)):
                timer = _due_timer(handler, state, now)
                if timer is None:
                    continue
                fired = (node_id, name)
                still_due[fired] = timer
                if self.fired.get(fired) == timer and (fired, timer) not in self._refused:
                    continue
                self._refused.discard((fired, timer))
                tenant, _, key = name.partition("/")
                command = timer_command(node_id, tenant, key, timer[1], timer=timer[0])
                refused = partial(self._forget, fired, timer)
                await self.outbox.emit(command, handler.cmd_topic, fallback=refused)
                sent += 1
        self.fired = still_due
        self._refused &= set(still_due.items())  # a timer no longer due is not sent again
        if sent:
            logger.debug("fired %d state timers", sent)
        return sent

    async def _forget(
        self, fired: tuple[str, str], timer: tuple[str, str], error: BaseException
    ) -> None:
        """Forget a timer command the bus failed to produce: the next scan sends it again.

        Remembered as sent, the key would stay due and never fire until a restart.
        """
        self._refused.add((fired, timer))  # read by the next scan, whenever this runs
        logger.warning(
            "timer %s of %s not sent (%s): sent again at the next scan", timer, fired, error
        )


def _due_timer(handler: KeyedNode, state: KeyState, now: datetime) -> tuple[str, str] | None:
    """Return the timer of ``state`` due by ``now`` (expiry first), or ``None``."""
    expires = handler.expires_at(state)
    if expires is not None and datetime.fromisoformat(expires) <= now:
        return EXPIRE_TIMER, expires
    if state.deadline is not None and datetime.fromisoformat(state.deadline) <= now:
        return TIMEOUT_TRIGGER, state.deadline
    return None
