"""The README's first commands as a newcomer runs them: ``python3 scripts/dev.py ...``.

A host started by ``dev.py run-host`` on a fresh broker of its own (a port of this test,
so the README's 9092 is not touched) and its own embedded PostgreSQL: its first start
logs no warning; a misspelt node is refused at once with the hosted names, and the
client's own error is the last line; Ctrl-C, as a terminal sends it to the whole
foreground group, drains the host and exits 0, leaves the broker it started running and
stops the PostgreSQL it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.processes import REPO, free_port_pair

from onex_actors.devinfra import broker_answers, local_broker

pytestmark = pytest.mark.integration

READY_TIMEOUT_S = 300.0
"""A first start may fetch the broker's jars."""


class DevScript:
    """``python3 scripts/dev.py ARGS`` as a terminal's foreground job, its output collected."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "scripts" / "dev.py"), *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group, as a terminal's job
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if " ready: hosting " in line:
                self.ready.set()
        self.ready.set()

    def ctrl_c(self, timeout_s: float = 60) -> int:
        """SIGINT to the job's whole process group, as the terminal sends it."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout_s)

    def close(self) -> None:
        """Kill it if it still runs; read its output to the end."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def _postgres_of(data_dir: Path) -> list[int]:
    """The PostgreSQL processes running on ``data_dir`` (Linux: /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
            if arguments[0].endswith(b"postgres") and str(data_dir).encode() in arguments:
                found.append(int(entry.name))
    return found


@pytest.fixture
def fresh_broker_port() -> Iterator[int]:
    """A port no broker listens on; the broker a host starts there is stopped afterwards."""
    port = free_port_pair()
    broker = local_broker("kafka", port, cache_dir=REPO / ".cache")
    broker.stop()
    broker.remove_data()
    try:
        yield port
    finally:
        broker.stop()
        broker.remove_data()


def test_run_host_through_dev_py_first_start_typo_and_ctrl_c(
    tmp_path: Path, fresh_broker_port: int
) -> None:
    bootstrap = f"127.0.0.1:{fresh_broker_port}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "ONEX_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "ONEX_KAFKA__LOCAL_BROKER": "kafka",
        "ONEX_DATABASES__DEFAULT__EMBEDDED_DIR": str(tmp_path / "postgres"),
        "PYTHONUNBUFFERED": "1",
    }
    host = DevScript(["run-host"], env)
    try:
        assert host.ready.wait(READY_TIMEOUT_S), "".join(host.lines)
        assert host.process.poll() is None, "".join(host.lines)
        data_dirs = [p for p in (tmp_path / "postgres").iterdir() if (p / "PG_VERSION").exists()]
        assert len(data_dirs) == 1, data_dirs
        assert _postgres_of(data_dirs[0]), "the host's embedded PostgreSQL is not running"

        # a misspelt node: refused at once (not after the 60 s it may wait), nothing sent
        typo = subprocess.run(
            [sys.executable, "scripts/dev.py", "emit", "ecko-node", "{}", "--timeout", "60"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert typo.returncode == 1, typo.stderr
        last = typo.stderr.strip().splitlines()[-1]
        assert last.startswith("error: no runtime hosts 'ecko-node': its command topic ")
        assert "nothing was sent. Did you mean 'echo-node'? Hosted nodes: echo-node, " in last
        assert "recipe" not in typo.stderr

        code = host.ctrl_c()
    finally:
        host.close()
    output = "".join(host.lines)
    assert code == 0, output
    first_start = output.split(" ready: hosting ")[0]
    assert "WARNING" not in first_start, first_start
    assert "keeps running" in output, output
    assert broker_answers(bootstrap), "the broker the host started did not outlive it"
    assert _postgres_of(data_dirs[0]) == [], "PostgreSQL outlived the last host using it"
