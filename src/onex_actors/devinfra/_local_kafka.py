"""A local Apache Kafka broker (KRaft) on 127.0.0.1, for development and tests.

The broker's jars come from Maven Central over HTTPS (the pinned ``broker-jars.txt``,
fetched once and checked by sha256, cached under ``<home>/libs``); Java 17 runs
``kafka.Kafka`` in combined broker+controller mode. Readiness is a real metadata round
trip, never a sleep.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from importlib import resources
from pathlib import Path

import attrs

from onex_actors.core import BusError

from ._maven import fetch_jars, parse_pinned_jars
from ._processes import is_running, start_time

__all__ = ["BrokerProcess", "LocalKafka", "SaslSslListener", "broker_answers"]

_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.consumer.min.session.timeout.ms=6000
group.consumer.session.timeout.ms=10000
group.consumer.min.heartbeat.interval.ms=1000
group.consumer.heartbeat.interval.ms=1000
auto.create.topics.enable=true
log.flush.interval.messages=9223372036854775807
"""

_SASL_SSL_PROPERTIES = """\
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port},\
SASL_SSL://127.0.0.1:{secure_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{secure_port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location={keystore}
"""

_LOG4J = """\
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <File name="file" fileName="{log}"><PatternLayout pattern="%d %p %c: %m%n"/></File>
  </Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="file"/></Root></Loggers>
</Configuration>
"""


def broker_answers(bootstrap: str, *, timeout_s: float = 2.0) -> bool:
    """Whether a Kafka broker at ``bootstrap`` answers a metadata request."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError:
        return False
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
    return True


def _absolute(path: str | Path) -> Path:
    return Path(path).resolve()


def _alive(pid: int, started: int | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` (clock ticks) still runs.

    A process with that id but another start time is a later program the id was given
    to; ``started`` is ``None`` for a pid file written before start times were recorded.
    """
    if started is not None and start_time(pid) != started:
        return False
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)  # our own child: reap it once it exits
    except ChildProcessError:
        return is_running(pid)
    return reaped == 0


@attrs.define
class BrokerProcess:
    """A local broker's process: its pid file under ``run_dir``, readiness, stop and kill.

    Shared by ``LocalKafka`` and ``LocalTansu``; ``name`` goes into error messages.
    """

    run_dir: Path
    name: str
    _process: subprocess.Popen[bytes] | None = attrs.field(default=None, init=False, repr=False)

    @property
    def pid_file(self) -> Path:
        """Where the running broker's process id is kept."""
        return self.run_dir / "broker.pid"

    def pid(self) -> int | None:
        """Return the broker's process id, if it runs.

        The pid file holds the id and the process's start time: a stale file whose id
        the kernel has since given to another program names no broker.
        """
        try:
            recorded = self.pid_file.read_text().split()
        except FileNotFoundError:
            return None
        if not recorded or not all(field.isdigit() for field in recorded):
            return None
        pid = int(recorded[0])
        if self._process is not None and self._process.pid == pid:
            return pid if self._process.poll() is None else None
        return pid if _alive(pid, int(recorded[1]) if len(recorded) > 1 else None) else None

    def spawn(self, args: list[str], output: Path) -> None:
        """Start ``args`` in its own session, appending its output to ``output``."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(output, "ab") as out:
            self._process = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        started = start_time(self._process.pid)
        self.pid_file.write_text(
            f"{self._process.pid} {started if started is not None else ''}".strip()
        )

    def wait_ready(self, bootstrap: str, output: Path, timeout_s: float) -> str:
        """Wait until the spawned broker answers a metadata request; return ``bootstrap``."""
        assert self._process is not None, "spawn() first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = output.read_text(errors="replace")[-1500:]
                raise BusError(
                    f"the local {self.name} broker exited ({self._process.returncode}): {tail}"
                )
            if broker_answers(bootstrap, timeout_s=1.0):
                return bootstrap
            time.sleep(0.05)  # polling a child process for readiness; each try is a real request
        self.stop()
        raise BusError(
            f"the local {self.name} broker did not answer on {bootstrap} in {timeout_s:g} s"
        )

    def stop(self, *, timeout_s: float = 30) -> None:
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
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """Kill the broker at once (SIGKILL), as a crash would."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while self.pid() is not None:
                time.sleep(0.05)


@attrs.frozen
class SaslSslListener:
    """A second listener, SASL_SSL with SCRAM-SHA-512, for testing secured clients.

    ``keystore`` is one PEM file holding the broker's PKCS#8 private key (unencrypted)
    and its certificate chain; ``users`` are the SCRAM credentials, written into the
    cluster metadata when the log dir is formatted (so only on a fresh ``run_dir``).
    """

    port: int
    keystore: Path
    users: tuple[tuple[str, str], ...]

    def scram_arguments(self) -> list[str]:
        """StorageTool's ``--add-scram`` arguments for ``users``."""
        arguments: list[str] = []
        for name, password in self.users:
            arguments += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]"]
        return arguments


@attrs.define
class LocalKafka:
    """One single-node Kafka broker whose files live under ``home``."""

    home: Path = attrs.field(default=Path(".cache/kafka"), converter=_absolute)
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    sasl_ssl: SaslSslListener | None = None
    """A SASL_SSL listener beside the plaintext one (tests of secured clients)."""
    _broker: BrokerProcess = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._broker = BrokerProcess(self.run_dir, "Kafka")

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    @property
    def libs(self) -> Path:
        """The cached broker jars."""
        return self.home / "libs"

    @property
    def run_dir(self) -> Path:
        """Config, data, log and pid file of the broker on this port."""
        return self.home / f"broker-{self.port}"

    @property
    def log_file(self) -> Path:
        """The broker's own log."""
        return self.run_dir / "broker.log"

    def fetch_jars(self) -> None:
        """Fetch the broker jars from Maven Central into ``libs`` (once; no Maven needed)."""
        pinned = parse_pinned_jars(
            resources.files(__package__).joinpath("broker-jars.txt").read_text()
        )
        fetch_jars(pinned, self.libs)

    def pid(self) -> int | None:
        """Return the broker's process id, if it runs."""
        return self._broker.pid()

    def start(self, *, timeout_s: float = 90) -> str:
        """Start the broker unless one answers on the port; return the bootstrap address."""
        if broker_answers(self.bootstrap):
            return self.bootstrap
        self.fetch_jars()
        data = self.run_dir / "data"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        properties = self.run_dir / "server.properties"
        text = _PROPERTIES.format(port=self.port, controller_port=self.controller_port, data=data)
        scram: list[str] = []
        if self.sasl_ssl is not None:
            secured = _SASL_SSL_PROPERTIES.format(
                port=self.port,
                controller_port=self.controller_port,
                secure_port=self.sasl_ssl.port,
                keystore=self.sasl_ssl.keystore,
            )
            replaced = {line.split("=", 1)[0] for line in secured.splitlines()}
            kept = [line for line in text.splitlines() if line.split("=", 1)[0] not in replaced]
            text = "\n".join(kept) + "\n" + secured
            scram = self.sasl_ssl.scram_arguments()
        properties.write_text(text)
        log4j = self.run_dir / "log4j2.xml"
        log4j.write_text(_LOG4J.format(log=self.log_file))
        classpath = f"{self.libs}/*"
        if not (data / "meta.properties").exists():
            cluster = "-"
            while cluster[0] in "-_":  # StorageTool would read a leading '-' as an option
                cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            subprocess.run(
                [
                    "java",
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "--standalone",
                    "-t",
                    cluster,
                    "-c",
                    str(properties),
                    *scram,
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            )
        output = self.run_dir / "stdout.log"
        self._broker.spawn(
            [
                "java",
                f"-Xmx{self.heap}",
                f"-Xms{self.heap}",
                "-XX:+UseSerialGC",
                f"-Dlog4j2.configurationFile={log4j}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(properties),
            ],
            output,
        )
        return self._broker.wait_ready(self.bootstrap, output, timeout_s)

    def stop(self, *, timeout_s: float = 30) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout_s``)."""
        self._broker.stop(timeout_s=timeout_s)

    def kill(self) -> None:
        """Kill the broker at once (SIGKILL), as a crash would."""
        self._broker.kill()

    def remove_data(self) -> None:
        """Delete the broker's data (it must be stopped)."""
        shutil.rmtree(self.run_dir, ignore_errors=True)
