"""Runtime hosts as real processes, for crash tests and fault scenarios."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["HOST_COMMAND", "default_host_log", "host_env", "host_process", "read_line"]

HOST_COMMAND = [sys.executable, "-c", "from onex_actors.cli import host_main; host_main()"]
"""``omninode-runtime-host`` run by this interpreter."""


def host_env(bootstrap: str, **extra: str) -> dict[str, str]:
    """Return this process's environment, pointing a host at ``bootstrap`` (plus ``extra``)."""
    return {
        **os.environ,
        "ONEX_BUS__KIND": "kafka",
        "ONEX_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "ONEX_KAFKA__START_LOCAL_BROKER": "false",
        "ONEX_COMMIT_INTERVAL_S": "0.5",
        **extra,
    }


def read_line(proc: subprocess.Popen[str], timeout_s: float = 60) -> str:
    """Return the next line ``proc`` prints; ``TimeoutError`` if none comes in time."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    if not ready:
        raise TimeoutError(f"process {proc.pid} printed nothing within {timeout_s:g} s")
    return proc.stdout.readline()


def default_host_log(runtime_id: str) -> Path:
    """Where ``host_process`` writes a host's log when not told: ``<tmp>/onex-host-<id>.log``."""
    return Path(tempfile.gettempdir()) / f"onex-host-{runtime_id}.log"


@contextmanager
def host_process(
    runtime_id: str,
    contracts: Path,
    env: Mapping[str, str],
    config: Path | None = None,
    *,
    prefix: Sequence[str] = (),
    log: Path | None = None,
    args: Sequence[str] = (),
) -> Iterator[subprocess.Popen[str]]:
    """Run a host process, started and ready (its first line read), killed on exit if still up.

    Its log goes to ``log``, by default ``<tmp>/onex-host-<runtime_id>.log``;
    ``ONEX_TEST_HOST_LOG_LEVEL`` (e.g. ``DEBUG``) sets its level. ``prefix`` runs it
    through another command (``ip netns exec <namespace>``); ``args`` are more of its
    options (``--workers 2``).
    """
    command = [
        *prefix,
        *HOST_COMMAND,
        "--runtime-node-id",
        runtime_id,
        "--contracts-dir",
        str(contracts),
        *args,
    ]
    if config is not None:
        command += ["--config", str(config)]
    if level := os.environ.get("ONEX_TEST_HOST_LOG_LEVEL"):
        command += ["--log-level", level]
    log = log or default_host_log(runtime_id)
    with open(log, "a") as stderr:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=dict(env)
        )
    try:
        line = read_line(proc)
        if " ready: " not in line:
            raise RuntimeError(f"host {runtime_id} did not start: {line!r}; see {log}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
