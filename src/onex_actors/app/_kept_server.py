"""``KeptServer``: a local model server this host started, started again when it exits.

A server process can die under a running host: killed for memory, crashed by its model
(llama.cpp built for another CPU dies with SIGILL at its first request). The host does
not go down with it. While the server is down, requests to it fail as
``model_unreachable`` naming how it ended and its log (``why_down``); it is started
again on the same port after a pause that doubles with each try (1 s up to 30 s) until
it has run for a minute, the way the supervisor restarts a crashed node.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from onex_actors.core import ConfigError
from onex_actors.devinfra import LocalModelServer

__all__ = ["KeptServer"]

logger = logging.getLogger("onex_actors.host")

FIRST_PAUSE_S = 1.0
"""The pause before the first restart after an exit."""
LONGEST_PAUSE_S = 30.0
"""The longest pause between restarts that keep failing."""
STABLE_S = 60.0
"""A server that ran this long before it exited is started again after the first pause;
one that exits sooner (a crash loop) waits twice as long as the last time."""


class KeptServer:
    """Watches one started :class:`LocalModelServer` and starts it again when it exits."""

    def __init__(
        self,
        server: LocalModelServer,
        *,
        pause: Callable[[float], Awaitable[object]] = trio.sleep,
    ) -> None:
        self.server = server
        self._pause = pause
        self.restarts = 0
        """Times the server was started again and answered."""
        self.exits = 0
        """Times the running server exited."""
        self.failed_starts = 0
        """Restarts that did not answer (each stopped and tried again later)."""
        self._down: str | None = None
        self._changed = trio.Event()

    def why_down(self) -> str | None:
        """How the server ended and where its log is, while it is down; else ``None``."""
        return self._down

    async def wait_for(self, *, exits: int = 0, restarts: int = 0) -> None:
        """Return once the server has exited ``exits`` times and restarted ``restarts`` times."""
        while self.exits < exits or self.restarts < restarts:
            await self._changed.wait()

    async def keep(self) -> None:
        """Wait for the server to exit, start it again; until cancelled (the host ends)."""
        pause = FIRST_PAUSE_S
        while True:
            running_since = trio.current_time()
            status = await trio.to_thread.run_sync(self.server.wait_exit, abandon_on_cancel=True)
            if trio.current_time() - running_since >= STABLE_S:
                pause = FIRST_PAUSE_S
            exited = self._down = self.server.describe_exit(status)
            self._note(exited=True)
            while True:
                logger.error("%s; starting it again in %g s", self._down, pause)
                await self._pause(pause)
                pause = min(pause * 2, LONGEST_PAUSE_S)
                try:
                    self.server.start()  # on the trio thread: it dies with its starter thread
                    await trio.to_thread.run_sync(self.server.wait_ready, abandon_on_cancel=True)
                except (ConfigError, OSError) as exc:
                    # one that started but never answered is stopped before the next try
                    await trio.to_thread.run_sync(self.server.stop)
                    self.failed_starts += 1
                    self._down = f"{exited}; starting it again failed: {exc}"
                    continue
                break
            self._down = None
            self._note(exited=False)
            logger.warning(
                "local %s server started again on %s (pid %s, restart %d)",
                self.server.kind,
                self.server.base_url,
                self.server.pid(),
                self.restarts,
            )

    def _note(self, *, exited: bool) -> None:
        if exited:
            self.exits += 1
        else:
            self.restarts += 1
        self._changed.set()
        self._changed = trio.Event()
