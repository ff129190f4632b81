"""The embedded PostgreSQL after its host is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import trio
from tests.kafka_support import KAFKA_FREE

from onex_actors.core import ConfigError
from onex_actors.devinfra import EmbeddedPostgres

pytestmark = [pytest.mark.integration, KAFKA_FREE]

_HOST = """
import sys
from onex_actors.devinfra import EmbeddedPostgres
server = EmbeddedPostgres(sys.argv[1])
server.start()
print(server.port, flush=True)
sys.stdin.read()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tZ" not in status


def _postmaster(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pg"
    yield path
    EmbeddedPostgres(path).remove()


def _start_host(data_dir: Path) -> subprocess.Popen[str]:
    host, _ = _start_host_on(data_dir)
    return host


def _start_host_on(data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    host = subprocess.Popen(
        [sys.executable, "-c", _HOST, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert host.stdout is not None
    port = host.stdout.readline().strip()
    assert port.isdigit()
    return host, int(port)


def _kill(host: subprocess.Popen[str]) -> None:
    with host:  # closes its pipes
        host.send_signal(signal.SIGKILL)
        host.wait()


def _wait_gone(pid: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        assert time.monotonic() < deadline, f"postmaster {pid} still running"
        time.sleep(0.1)


async def _answers(dsn: str) -> int:
    async def query() -> int:
        connection = await asyncpg.connect(dsn)
        try:
            return int(await connection.fetchval("select 41 + 1"))
        finally:
            await connection.close()

    return await trio.to_thread.run_sync(asyncio.run, query())


def _reapers_of(data_dir: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"-c" in arguments[1:2]
            and b"pg_ctl" in b" ".join(arguments)
            and (str(data_dir).encode() in arguments)
        ):
            found.append(int(entry.name))
    return found


def _process_state(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "gone"
    return next(line for line in status.splitlines() if line.startswith("State:"))


def _the_reaper_of(data_dir: Path, host: subprocess.Popen[str]) -> int:
    """Return the one reaper running for ``data_dir``; else fail saying what became of it."""
    reapers = _reapers_of(data_dir)
    if len(reapers) == 1:
        return reapers[0]
    users = data_dir.with_name(data_dir.name + ".users")
    listed = {
        entry.name: _process_state(int(entry.name))
        for entry in users.iterdir()
        if entry.name.isdigit()
    }
    log = users / "reapers.log"
    pytest.fail(
        f"{len(reapers)} reapers run for {data_dir}, not 1: the host's exit status is "
        f"{host.poll()}, the reapers listed are {listed}, their errors "
        f"{log.read_text(errors='replace') if log.exists() else '(no log)'!r}"
    )


def test_the_server_dies_with_a_host_killed_by_sigkill(data_dir: Path) -> None:
    host = _start_host(data_dir)
    try:
        postmaster = _postmaster(data_dir)
    finally:
        _kill(host)
    _wait_gone(postmaster)


async def test_a_server_left_running_by_a_dead_host_is_recovered(data_dir: Path) -> None:
    """Its reaper killed too (kill -9 of the whole process group): the next start recovers."""
    host = _start_host(data_dir)
    try:
        postmaster = _postmaster(data_dir)
        os.kill(_the_reaper_of(data_dir, host), signal.SIGKILL)
    finally:
        _kill(host)
    assert _alive(postmaster)  # orphaned, holding the data directory's lock
    server = EmbeddedPostgres(data_dir)
    dsn = await trio.to_thread.run_sync(server.start)
    try:
        assert not _alive(postmaster)
        assert await _answers(dsn) == 42
    finally:
        await trio.to_thread.run_sync(server.stop)


async def test_a_second_host_shares_the_server_until_the_last_one_leaves(data_dir: Path) -> None:
    first, port = _start_host_on(data_dir)
    second: subprocess.Popen[str] | None = None
    try:
        postmaster = _postmaster(data_dir)
        first_reaper = _the_reaper_of(data_dir, first)
        second, second_port = _start_host_on(data_dir)
        assert second_port == port, "the second host started a server of its own"
        assert _postmaster(data_dir) == postmaster, "the first host's server was restarted"
        _kill(first)
        _wait_gone(first_reaper)  # it has decided: another host still uses the server
        assert _alive(postmaster), "the server stopped under the second host"
        assert await _answers(f"postgresql://postgres@127.0.0.1:{port}/postgres") == 42
    finally:
        _kill(first)
        if second is not None:
            _kill(second)
    _wait_gone(postmaster)


def test_a_stale_lock_file_never_gets_another_process_signalled(data_dir: Path) -> None:
    """The server died by SIGKILL and its id went to another program: nobody signals it."""
    host = _start_host(data_dir)
    bystander = subprocess.Popen(["sleep", "600"])  # what the kernel gave the id to
    try:
        reaper = _the_reaper_of(data_dir, host)
        postmaster = _postmaster(data_dir)
        os.kill(postmaster, signal.SIGKILL)
        _wait_gone(postmaster)
        lock = data_dir / "postmaster.pid"
        lock.write_text(lock.read_text().replace(str(postmaster), str(bystander.pid), 1))
        _kill(host)
        _wait_gone(reaper)  # it has decided, and pg_ctl stop (SIGINT) would have run
        EmbeddedPostgres(data_dir).stop()
        assert bystander.poll() is None, "a process named by a stale lock file was signalled"
    finally:
        _kill(host)
        bystander.kill()
        bystander.wait()


def test_a_listed_reaper_whose_id_went_to_another_program_keeps_no_server_alive(
    data_dir: Path,
) -> None:
    """A reaper killed with its host stays listed; a later process with its id is not it."""
    host = _start_host(data_dir)
    bystander = subprocess.Popen(["sleep", "600"])
    try:
        postmaster = _postmaster(data_dir)
        users = data_dir.with_name(data_dir.name + ".users")
        (users / str(bystander.pid)).write_text("1")  # started at another time than it
        _kill(host)
        _wait_gone(postmaster)
    finally:
        _kill(host)
        bystander.kill()
        bystander.wait()


def test_a_host_whose_reaper_cannot_start_fails_and_leaves_no_server(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without its reaper the server would outlive the host: the start fails instead."""
    monkeypatch.setattr(sys, "executable", "/bin/false")  # what runs the reaper
    server = EmbeddedPostgres(data_dir)
    with pytest.raises(
        ConfigError, match=r"the reaper .* did not start \(pid \d+, exit status 1\)"
    ):
        server.start()
    assert not server.pid_file.exists(), "the server outlived the failed start"
    assert not any(entry.name.isdigit() for entry in server.users_dir.iterdir())


def test_a_lock_file_whose_process_is_gone_is_removed(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir)
    server.start()
    server.stop()
    (data_dir / "postmaster.pid").write_text("999999\n")  # a stale lock: no such process
    server.start()
    try:
        assert _postmaster(data_dir) != 999999
    finally:
        server.stop()
