"""A local Jaeger on 127.0.0.1, built from the Go module proxy: where tests send traces.

Jaeger publishes its all-in-one binary as container images and GitHub release archives,
neither of which a machine here can fetch; the Go module proxy serves its source. So
``jaeger_binary`` builds it once per machine (about 7 minutes on 2 cores, a third of
it fetching modules) into ``.cache/jaeger`` with a Go toolchain that is either the
machine's (new enough) or the one the module proxy serves (``golang.org/toolchain``, its
digest pinned here), cached under ``.cache/go``; later calls return the cached binary.
``build_jaeger_in_background`` starts that build in a process of the lowest priority, so
a test run can build it on the CPU its other tests leave idle. ``LocalJaeger`` runs it
with in-memory storage, an OTLP/HTTP receiver and the query API, every port on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from onex_actors.core import ConfigError

from ._file_lock import file_lock
from ._free_port import free_port

__all__ = ["JAEGER_VERSION", "LocalJaeger", "build_jaeger_in_background", "jaeger_binary"]

logger = logging.getLogger("onex_actors.devinfra")

JAEGER_MODULE = "github.com/jaegertracing/jaeger"
JAEGER_VERSION = "v1.75.0"
"""Jaeger v2 (``cmd/jaeger``, on the OpenTelemetry Collector), release 1.75.0."""
GO_PROXY = "https://proxy.golang.org"
GO_TOOLCHAIN = "go1.25.3"
"""The toolchain Jaeger's go.mod names; a machine's own Go may be used if it is newer."""
GO_TOOLCHAIN_SHA256 = "9758fbb61130102a9128976f9666fe3fd03578ed1e39d0751d8d30f364762ea8"
"""Of ``golang.org/toolchain@v0.0.1-go1.25.3.linux-amd64.zip`` on the module proxy."""
_MIN_GO = (1, 24, 6)


def jaeger_binary(cache_dir: Path = Path(".cache")) -> Path:
    """Return the Jaeger binary, building it first if this machine has none yet."""
    home = cache_dir.absolute() / "jaeger"
    target = home / f"jaeger-{JAEGER_VERSION}"
    if target.exists():
        return target
    home.mkdir(parents=True, exist_ok=True)
    with file_lock(home / ".build.lock"):
        if target.exists():  # another process built it meanwhile
            return target
        go = _go(cache_dir.absolute() / "go")
        started = time.monotonic()
        logger.info("building Jaeger %s with %s (once per machine)", JAEGER_VERSION, go)
        _build(go, cache_dir.absolute() / "go", target)
        logger.info("built %s in %.0f s", target, time.monotonic() - started)
    return target


_BACKGROUND_BUILD = """
import logging, os, sys
from pathlib import Path
os.nice(19)  # also the lowest best-effort I/O priority, which follows the nice value
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # inherited by go's compilers
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
from onex_actors.devinfra import jaeger_binary
jaeger_binary(Path(sys.argv[1]))
"""


def build_jaeger_in_background(cache_dir: Path = Path(".cache")) -> subprocess.Popen[bytes] | None:
    """Start building the Jaeger binary in a process that runs only on idle CPU.

    Returns the process, or None when the binary is built already. ``jaeger_binary``
    called meanwhile waits for this build (they share a lock) instead of starting its
    own; if this one fails, that call builds again and raises the error. The build's
    output goes to ``.cache/jaeger/background-build.log``.
    """
    home = cache_dir.absolute() / "jaeger"
    if (home / f"jaeger-{JAEGER_VERSION}").exists():
        return None
    home.mkdir(parents=True, exist_ok=True)
    with (home / "background-build.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-c", _BACKGROUND_BUILD, str(cache_dir.absolute())],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _go(home: Path) -> Path:
    """Return a Go toolchain new enough for Jaeger: the machine's, or the module proxy's."""
    found = shutil.which("go")
    if found is not None and _version_of(Path(found)) >= _MIN_GO:
        return Path(found)
    root = home / "toolchain" / GO_TOOLCHAIN
    go = root / "bin" / "go"
    if go.exists():
        return go
    name = f"v0.0.1-{GO_TOOLCHAIN}.linux-amd64"
    url = f"{GO_PROXY}/golang.org/toolchain/@v/{name}.zip"
    logger.info("fetching the Go toolchain %s from %s", GO_TOOLCHAIN, url)
    home.mkdir(parents=True, exist_ok=True)
    archive = home / f"{name}.zip"
    with urllib.request.urlopen(url, timeout=120) as answer, archive.open("wb") as out:
        shutil.copyfileobj(answer, out)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != GO_TOOLCHAIN_SHA256:
        archive.unlink()
        raise ConfigError(
            f"the Go toolchain from {url} has SHA-256 {digest}, not the pinned "
            f"{GO_TOOLCHAIN_SHA256}: not used"
        )
    prefix = f"golang.org/toolchain@{name}/"
    staging = Path(tempfile.mkdtemp(dir=home))
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            if not member.filename.startswith(prefix) or member.is_dir():
                continue
            path = staging / member.filename[len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(member) as source, path.open("wb") as out:
                shutil.copyfileobj(source, out)
            mode = (member.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(root)
    archive.unlink()
    return go


def _version_of(go: Path) -> tuple[int, ...]:
    try:
        said = subprocess.run(
            [str(go), "env", "GOVERSION"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env={**os.environ, "GOTOOLCHAIN": "local"},
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    match = re.search(r"go(\d+)\.(\d+)(?:\.(\d+))?", said)
    return tuple(int(part or 0) for part in match.groups()) if match else ()


def _build(go: Path, home: Path, target: Path) -> None:
    env = {
        **os.environ,
        "GOPATH": str(home / "path"),
        "GOCACHE": str(home / "build-cache"),
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-mod=mod -buildvcs=false",
        "CGO_ENABLED": "0",
        "GOPROXY": os.environ.get("GOPROXY", f"{GO_PROXY},direct"),
    }
    with tempfile.TemporaryDirectory(prefix="jaeger-build-") as folder:
        steps = [
            [str(go), "mod", "init", "onex-jaeger-build"],
            [str(go), "get", "-tool", f"{JAEGER_MODULE}/cmd/jaeger@{JAEGER_VERSION}"],
            [str(go), "build", "-trimpath", "-o", f"{target}.part", f"{JAEGER_MODULE}/cmd/jaeger"],
        ]
        for step in steps:
            done = subprocess.run(
                step, cwd=folder, env=env, capture_output=True, text=True, timeout=1800, check=False
            )
            if done.returncode != 0:
                raise ConfigError(
                    f"building Jaeger {JAEGER_VERSION} failed at `{' '.join(step[1:])}` "
                    f"(exit {done.returncode}): {done.stderr.strip()[-2000:]}"
                )
    Path(f"{target}.part").rename(target)


class LocalJaeger:
    """A Jaeger all-in-one with in-memory storage, every listener on 127.0.0.1."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.otlp_port, self.query_port, self.health_port, self.grpc_port = (
            free_port() for _ in range(4)
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def otlp_endpoint(self) -> str:
        """The OTLP/HTTP traces endpoint (what ``tracing.otlp_endpoint`` names)."""
        return f"http://127.0.0.1:{self.otlp_port}/v1/traces"

    @property
    def query_url(self) -> str:
        """The query API's base URL (``/api/traces/<id>``, ``/api/services``)."""
        return f"http://127.0.0.1:{self.query_port}"

    @property
    def log_file(self) -> Path:
        """Jaeger's own output."""
        return self.workdir / "jaeger.log"

    def start(self, *, timeout_s: float = 30) -> None:
        """Start it and wait until its health check says it is ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "jaeger.yaml"
        config.write_text(self._config())
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen(
                [str(self.binary), "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                status = self._get(f"http://127.0.0.1:{self.health_port}/status")
            except OSError:
                time.sleep(0.1)
                continue
            if status.get("healthy"):
                return
            time.sleep(0.1)
        self.stop()
        raise ConfigError(
            f"Jaeger did not become ready within {timeout_s:g} s: "
            f"{self.log_file.read_text(errors='replace')[-2000:]}"
        )

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """Return the spans the query API holds for ``trace_id`` (32 hex digits)."""
        try:
            answer = self._get(f"{self.query_url}/api/traces/{trace_id}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise
        spans: list[dict[str, Any]] = []
        for trace in answer.get("data") or []:
            processes = trace.get("processes", {})
            for span in trace.get("spans", []):
                span["service"] = processes.get(span.get("processID"), {}).get("serviceName")
                spans.append(span)
        return spans

    def stop(self, *, timeout_s: float = 10) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _get(self, url: str) -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=5) as answer:
            loaded: dict[str, Any] = json.loads(answer.read())
            return loaded

    def _config(self) -> str:
        return f"""\
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    enable_tracing: false  # else it traces itself to 127.0.0.1:4317 and waits 10 s to stop
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{self.query_port}
    grpc:
      endpoint: 127.0.0.1:{self.grpc_port}
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:{self.health_port}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{self.otlp_port}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""
