#!/usr/bin/env python3
"""The project's entry point on a fresh machine: it needs only Python 3.11 and pip.

    python3 scripts/dev.py run-host     # a runtime host on the embedded defaults
    python3 scripts/dev.py test         # the whole test suite
    python3 scripts/dev.py --list       # every task (the justfile's recipes)

On first use it makes ``.venv`` and installs the package with its tools into it (``just``
among them, from the rust-just wheel), one line per step and the installers' output
only when they fail; again when ``pyproject.toml`` changes. Then it runs the task with
``just``. What a task needs beyond that (a Kafka broker, PostgreSQL) it starts itself;
llama.cpp's server, which has no wheel on PyPI, is built by the first host (or test)
that needs it, not here.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".onex-installed"
"""Holds the digest of the pyproject.toml the installed package was installed from."""


def main(argv: list[str]) -> int:
    """Make sure ``.venv`` is installed, then run ``just`` with ``argv``."""
    if sys.version_info < (3, 11):  # noqa: UP036 (run by whatever python3 the machine has)
        print(f"onex-actors needs Python 3.11 or newer, not {sys.version.split()[0]}")
        return 1
    try:
        _ensure_venv()
        _ensure_installed()
    except _StepFailed as failure:
        print(failure, file=sys.stderr)
        return 1
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return _run_task(argv)


def _run_task(argv: list[str]) -> int:
    """Run ``just`` with ``argv``; hand Ctrl-C and SIGTERM to the task, not to ``just``.

    ``just`` ends with exit 130 and an error line once it gets a SIGINT, however its
    recipe ends; so it runs in a process group of its own (the terminal's Ctrl-C reaches
    this process only) and the signal goes to what runs under it. A host that drains and
    exits 0 on Ctrl-C then leaves ``just``, and this command, with 0 too.
    """
    task = subprocess.Popen(
        [str(BIN / "just"), *argv], cwd=ROOT, process_group=0, preexec_fn=_terminate_with_parent
    )

    def forward(signum: int, _frame: object) -> None:
        for pid in _task_processes(task.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return task.wait()


def _terminate_with_parent() -> None:
    """In the child: have the kernel send it SIGTERM should this process die first (Linux).

    Out of the terminal's process group, ``just`` would otherwise outlive a killed
    ``dev.py``, and its task with it; on SIGTERM it stops its task and exits.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


def _task_processes(just: int) -> list[int]:
    """The processes under ``just`` that a terminal's Ctrl-C would reach (Linux: ``/proc``).

    Those of its process group, as the terminal would signal them, less ``just`` itself.
    What a task started in a session of its own is meant to outlive that Ctrl-C or to
    stop by itself (the broker a host started, the embedded PostgreSQL's reaper, a
    model server that dies with its host): it is left alone, and so is all under it.
    """
    return _in_group_under(just, group=just)


def _in_group_under(pid: int, *, group: int) -> list[int]:
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            for child in map(int, children.read_text().split()):
                with contextlib.suppress(OSError):
                    if os.getpgid(child) == group:
                        found += [child, *_in_group_under(child, group=group)]
    return found


class _StepFailed(Exception):
    pass


def _step(message: str, command: list[str]) -> None:
    print(f"onex-actors: {message}", flush=True)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise _StepFailed(f"{message} failed ({' '.join(command)}):\n{output[-4000:]}")


def _ensure_venv() -> None:
    if (BIN / "python").exists():
        return
    _step("making the virtualenv .venv", [sys.executable, "-m", "venv", str(VENV)])


def _ensure_installed() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and (BIN / "just").exists():
        return
    pip = [str(BIN / "python"), "-m", "pip", "install", "-q"]
    _step("updating pip in .venv", [*pip, "--upgrade", "pip"])
    _step(
        "installing onex-actors with its test and lint tools into .venv (about 30 s)",
        [*pip, "-e", ".[dev]"],
    )
    STAMP.write_text(wanted + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
