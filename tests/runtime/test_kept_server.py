"""``KeptServer``: when a local model server is started again, and what its errors say meanwhile.

A stand-in server process (exits and readiness on the test's say) under trio's clock;
the real server killed with SIGKILL is in ``tests/integration/test_model_nodes.py``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from onex_actors.app._kept_server import KeptServer
from onex_actors.core import ConfigError


class StandInServer:
    """Exits when the test says; its next starts fail ``failing_starts`` times."""

    kind = "embedding"
    base_url = "http://127.0.0.1:1/v1"

    def __init__(self) -> None:
        self._exited = threading.Event()
        self._status = 0
        self.failing_starts = 0
        self.starts = 0
        self.stops = 0

    def exit(self, status: int) -> None:
        self._status = status
        self._exited.set()

    def wait_exit(self) -> int:
        self._exited.wait()
        return self._status

    def describe_exit(self, status: int) -> str:
        return f"the stand-in exited ({status})"

    def start(self) -> None:
        self.starts += 1
        self._exited.clear()

    def wait_ready(self) -> None:
        if self.failing_starts:
            self.failing_starts -= 1
            raise ConfigError("it did not answer")

    def stop(self) -> None:
        self.stops += 1
        self.exit(-15)

    def pid(self) -> int:
        return 1


@asynccontextmanager
async def keeping(
    server: StandInServer,
) -> AsyncIterator[tuple[KeptServer, list[tuple[float, str | None]]]]:
    """Keep ``server`` while the block runs; its pauses are recorded with what it says then."""
    pauses: list[tuple[float, str | None]] = []

    async def pause(seconds: float) -> None:
        pauses.append((seconds, kept.why_down()))
        await trio.sleep(seconds)

    kept = KeptServer(server, pause=pause)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(kept.keep)
        yield kept, pauses
        nursery.cancel_scope.cancel()
    server.exit(0)  # the abandoned thread waiting for an exit ends too


async def test_failed_restarts_wait_longer_each_time_and_say_why(
    autojump_clock: trio.abc.Clock,
) -> None:
    server = StandInServer()
    async with keeping(server) as (kept, pauses):
        assert kept.why_down() is None
        server.failing_starts = 2
        server.exit(-9)
        await kept.wait_for(exits=1, restarts=1)
    down = "the stand-in exited (-9)"
    failed = f"{down}; starting it again failed: it did not answer"
    assert pauses == [(1.0, down), (2.0, failed), (4.0, failed)]
    assert (server.starts, server.stops, kept.failed_starts) == (3, 2, 2)
    assert kept.why_down() is None


async def test_a_server_that_ran_a_minute_is_started_again_after_the_first_pause(
    autojump_clock: trio.abc.Clock,
) -> None:
    server = StandInServer()
    async with keeping(server) as (kept, pauses):
        server.exit(1)
        await kept.wait_for(exits=1, restarts=1)
        server.exit(1)  # at once: a crash loop waits longer
        await kept.wait_for(exits=2, restarts=2)
        await trio.sleep(61)
        server.exit(1)  # after a minute's run: back to the first pause
        await kept.wait_for(exits=3, restarts=3)
    assert [seconds for seconds, _ in pauses] == [1.0, 2.0, 1.0]
    assert [said for _, said in pauses] == ["the stand-in exited (1)"] * 3
    assert server.stops == 0


async def test_pauses_stop_growing_at_thirty_seconds(autojump_clock: trio.abc.Clock) -> None:
    server = StandInServer()
    async with keeping(server) as (kept, pauses):
        server.failing_starts = 7
        server.exit(-4)
        await kept.wait_for(exits=1, restarts=1)
    assert [seconds for seconds, _ in pauses] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
