"""The host process's signals: a stop during start-up ends the start, cleanly."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from onex_actors.app import HostConfig
from onex_actors.cli import _host


async def test_a_signal_during_start_up_stops_the_start_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    entered = trio.Event()
    left = trio.Event()

    @asynccontextmanager
    async def never_ready(runtime_id: str, config: HostConfig) -> AsyncIterator[None]:
        entered.set()
        try:
            await trio.sleep_forever()  # a broker that takes its time to start
            yield
        finally:
            left.set()

    monkeypatch.setattr(_host, "open_runtime_host", never_ready)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_host.serve, "runtime-slow", HostConfig())
        await entered.wait()
        os.kill(os.getpid(), signal.SIGTERM)
        with trio.fail_after(10):
            await left.wait()
    out = capsys.readouterr().out
    assert "received SIGTERM: stopping" in out
    assert out.rstrip().endswith("runtime runtime-slow stopped before it was ready")
