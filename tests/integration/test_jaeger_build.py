"""The background Jaeger build: skipped when built, and only ever on idle CPU."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from tests.kafka_support import KAFKA_FREE

from onex_actors.devinfra import JAEGER_VERSION, build_jaeger_in_background

pytestmark = [pytest.mark.integration, KAFKA_FREE]

SCHED_IDLE = 5
"""Linux's number for the policy, as /proc/<pid>/stat shows it."""


def test_a_built_binary_is_not_built_again(tmp_path: Path) -> None:
    binary = tmp_path / "jaeger" / f"jaeger-{JAEGER_VERSION}"
    binary.parent.mkdir()
    binary.write_bytes(b"")
    assert build_jaeger_in_background(tmp_path) is None


def test_the_build_runs_only_on_idle_cpu(tmp_path: Path) -> None:
    build = build_jaeger_in_background(tmp_path)
    assert build is not None
    try:
        deadline = time.monotonic() + 20
        while True:
            fields = Path(f"/proc/{build.pid}/stat").read_text().rsplit(")", 1)[1].split()
            nice, policy = int(fields[16]), int(fields[38])
            if policy == SCHED_IDLE:
                break
            assert build.poll() is None, (tmp_path / "jaeger" / "background-build.log").read_text()
            assert time.monotonic() < deadline, f"policy {policy} after 20 s"
            time.sleep(0.05)  # polls the child's own state, bounded by the deadline
        assert nice == 19
    finally:
        os.killpg(build.pid, signal.SIGTERM)
        build.wait(timeout=30)
