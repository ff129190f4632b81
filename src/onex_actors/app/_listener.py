"""The host's HTTP listener: ``/healthz``, ``/readyz`` and ``/metrics``, on its trio loop.

hypercorn serves the small ASGI app below on the host's own trio loop (no thread, no
second event loop); the app only reads the host's state. It stops when the host has
stopped, so ``/readyz`` says "draining" while the host finishes what it holds.

- ``/healthz``: 200 while the host runs (its loop answers this very request, and its
  consumer and nodes are up); 503 once it stopped.
- ``/readyz``: 200 once the consumer has had partitions and every hosted node runs or
  restarts within its intensity; 503 with the reason while starting, draining, while no
  Kafka broker answers (since when), or when a node has stopped.
- ``/metrics``: the Prometheus text format (``_metrics.HostCollector``).
- ``/state/<node>/<key>``: a reducer key's state, when configured (``_state_view``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from onex_actors.runtime import NodeStatus

from ._metrics import HostCollector, host_registry
from ._state_view import state_view

if TYPE_CHECKING:
    from ._host import RuntimeHost

__all__ = ["ListenerApp", "serve_listener"]

logger = logging.getLogger("onex_actors.host")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def serve_listener(
    host: RuntimeHost, listen: str, *, task_status: trio.TaskStatus[list[str]]
) -> None:
    """Serve the listener on ``listen`` (``host:port``) until ``host`` has stopped.

    Reports the bound addresses (``http://127.0.0.1:9100``) once listening.
    """
    config = Config()
    config.bind = [listen]
    config.accesslog = None
    config.errorlog = logger
    config.graceful_timeout = 1.0
    await serve(
        ListenerApp(host),  # type: ignore[arg-type]
        config,
        shutdown_trigger=host.stopped.wait,
        task_status=task_status,
        mode="asgi",
    )


class ListenerApp:
    """The ASGI app of the listener (see the module's docstring)."""

    def __init__(self, host: RuntimeHost) -> None:
        self.host = host
        self.collector = HostCollector(host)
        self.registry = host_registry(self.collector)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"only GET\n", b"text/plain")
            return
        path = scope["path"]
        if path == "/metrics":
            await self.collector.refresh_handler_health()
            await _respond(send, 200, generate_latest(self.registry), CONTENT_TYPE_LATEST.encode())
        elif path == "/healthz":
            await _respond_json(send, *self.health())
        elif path == "/readyz":
            await _respond_json(send, *self.readiness())
        elif path.startswith("/state/"):
            headers = dict(scope.get("headers", []))
            authorization = headers.get(b"authorization")
            answer = state_view(
                self.host,
                self.host.config.http.state,
                path,
                scope.get("query_string", b""),
                authorization.decode("latin-1") if authorization is not None else None,
            )
            await _respond_json(send, *answer)
        else:
            await _respond(
                send, 404, b"not found: /healthz, /readyz, /metrics, /state\n", b"text/plain"
            )

    def health(self) -> tuple[int, dict[str, object]]:
        """Whether the host runs: its loop answers, its runtime is up."""
        if self.host.stopped.is_set() or self.host.runtime_or_none is None:
            return 503, {"status": "stopped"}
        return 200, {"status": "ok"}

    def readiness(self) -> tuple[int, dict[str, object]]:
        """Whether the host should get traffic now, and why not."""
        host = self.host
        runtime = host.runtime_or_none
        if runtime is None or host.stopped.is_set():
            return 503, {"ready": False, "reason": "not running"}
        if host.draining:
            return 503, {"ready": False, "reason": "draining"}
        if (outage := host.bus.unreachable()) is not None:
            return 503, {"ready": False, "reason": outage}
        if not host.assigned:
            return 503, {"ready": False, "reason": "waiting for partitions"}
        stopped = sorted(
            node_id
            for node_id, actor in runtime.actors.items()
            if actor.status is NodeStatus.STOPPED
        )
        if stopped:
            return 503, {"ready": False, "reason": "nodes stopped", "nodes": stopped}
        if host.resumed:  # where a hand-over resumed each node (Kafka hosts)
            return 200, {"ready": True, "resumed": host.resumed_json()}
        return 200, {"ready": True}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond_json(send: Send, status: int, body: dict[str, object]) -> None:
    await _respond(send, status, json.dumps(body).encode() + b"\n", b"application/json")


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})
