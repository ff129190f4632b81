"""The host's tracer, from ``tracing`` in its config (OpenTelemetry, loaded only when on)."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import trio

from onex_actors.core import ConfigError
from onex_actors.runtime import Tracer

from ._config import TracingSettings

__all__ = ["open_host_tracer"]


@asynccontextmanager
async def open_host_tracer(
    settings: TracingSettings, runtime_id: str, consumer_group: str
) -> AsyncIterator[Tracer | None]:
    """Yield the tracer ``settings`` ask for (``None`` when tracing is off); flush it after.

    It is yielded once its export process has loaded; both waits run off the event loop.
    """
    if not settings.enabled:
        yield None
        return
    try:
        from onex_actors.bridges.otel import open_tracer
    except ImportError:
        raise ConfigError(
            "tracing.enabled is set but OpenTelemetry is not installed: "
            "pip install 'onex-actors[tracing]', or set tracing.enabled: false"
        ) from None
    host = socket.gethostname()
    resource = {
        "service.name": runtime_id,
        "service.version": _version(),
        "service.instance.id": f"{host}-{os.getpid()}",
        "host.name": host,
        **settings.resource,
    }
    opened = ExitStack()
    tracer = opened.enter_context(
        open_tracer(
            endpoint=settings.otlp_endpoint,
            sampler_ratio=settings.sampler_ratio,
            resource=resource,
            consumer_group=consumer_group,
            headers=settings.headers,
        )
    )
    try:
        await trio.to_thread.run_sync(tracer.wait_loaded, abandon_on_cancel=True)
        yield tracer
    finally:
        # the last spans written and their export waited for (15 s at most), off the
        # event loop and through a cancellation too (a Ctrl-C still exports them)
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(opened.close)


def _version() -> str:
    try:
        return version("onex-actors")
    except PackageNotFoundError:
        return "unknown"
