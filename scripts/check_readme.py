#!/usr/bin/env python3
"""Run every code block of README.md as a newcomer would paste it, top to bottom.

- ``sh`` blocks: each line is a command, run with bash from the project root. A command
  whose comment says ``until Ctrl-C`` is started in the background (its own process
  group, as a second terminal would be) and waited for until it says it is ready (a
  line with ``ready``, ``Serving HTTP`` or ``following``); at the next heading of the
  README it gets Ctrl-C (SIGINT to its group) and must exit 0. Any other command must
  exit 0, or the status its comment names (``# exits 1: ...``).
- ``output`` blocks: what the last command of the ``sh`` block before them printed on
  its standard output, compared line by line (trailing spaces aside), so the README
  cannot drift from what its commands print.
- ``python`` blocks: run with ``.venv/bin/python``; must exit 0. A ``python test`` block
  is a test file as a project would write it: run by pytest (the onex plugin loads by
  itself) from a folder of its own under ``.cache/readme``; every test must pass.
- Blocks with no language (a diagram, a sketch) are not run.

Exit 0 when everything passed; otherwise the first failure, with the command's output.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"ready|Serving HTTP|following")
EXITS = re.compile(r"\bexits (\d+)\b")
START_TIMEOUT_S = 1200.0
"""A first ``run-host`` installs .venv, fetches the broker's jars and starts PostgreSQL;
the first host of an llm node builds llama.cpp's server (3-10 minutes on 2 cores)."""
STOP_TIMEOUT_S = 60.0


class Failed(Exception):
    """A README command did not do what the README says."""


class Background:
    """A command left running, as in a second terminal, until its section ends."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            sys.stdout.write(f"  | {line}")
            self.lines.append(line)
            if READY.search(line):
                self.ready.set()
        self.ready.set()

    def wait_ready(self) -> None:
        """Wait until the command says it is ready; fail if it ended first."""
        if not self.ready.wait(START_TIMEOUT_S) or self.process.poll() is not None:
            raise Failed(f"{self.command!r} never said it was ready:\n{''.join(self.lines)}")

    def interrupt(self) -> None:
        """Press Ctrl-C on it; fail unless it exits 0."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            code = self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise Failed(f"{self.command!r} did not stop within {STOP_TIMEOUT_S:g} s") from None
        if code != 0:
            raise Failed(f"{self.command!r} exited {code} on Ctrl-C:\n{''.join(self.lines)}")


def blocks(readme: str) -> list[tuple[str, str, str]]:
    """Return the README's fenced blocks as (section heading, language, body).

    The language of a ``python test`` fence is ``python test``.
    """
    found = []
    section = ""
    lines = iter(readme.splitlines())
    for line in lines:
        if heading := re.match(r"^#+ (.*)", line):
            section = heading.group(1).strip()
        fence = re.match(r"^```(\w*(?: test)?)\s*$", line)
        if fence is None:
            continue
        body = []
        for inner in lines:
            if inner.startswith("```"):
                break
            body.append(inner)
        found.append((section, fence.group(1), "\n".join(body)))
    return found


def run_command(command: str, expected: int = 0) -> str:
    """Run one command in the foreground, its output shown; return its standard output.

    Fails unless it exits with ``expected``.
    """
    print(f"$ {command}", flush=True)
    process = subprocess.Popen(["bash", "-c", command], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:  # shown as it comes: the test suite runs for minutes
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    code = process.wait()
    if code != expected:
        raise Failed(f"{command!r} exited {code}, not {expected}")
    return "".join(lines)


def compare_output(command: str, printed: str, shown: str) -> None:
    """Fail unless ``printed`` is what the README ``shows`` for ``command``."""
    have = [line.rstrip() for line in printed.strip("\n").splitlines()]
    want = [line.rstrip() for line in shown.strip("\n").splitlines()]
    if have != want:
        diff = "\n".join(difflib.unified_diff(want, have, "README", "printed", lineterm=""))
        raise Failed(f"the README shows other output than {command!r} prints:\n{diff}")


def run(readme: Path) -> None:
    """Run every block of ``readme`` in order (see the module's docstring)."""
    running: list[Background] = []
    try:
        _run_blocks(readme, running)
    finally:
        for background in reversed(running):  # left by a failure
            with contextlib.suppress(Failed, ProcessLookupError):
                background.interrupt()


def _run_blocks(readme: Path, running: list[Background]) -> None:
    section = None
    last: tuple[str, str] | None = None  # the last foreground command and what it printed
    for heading, language, body in blocks(readme.read_text()):
        if heading != section:
            stop_all(running)
            section = heading
        if language == "output":
            if last is None:
                raise Failed(f"an output block in section {heading!r} follows no command")
            compare_output(*last, body)
            last = None
            continue
        last = None
        if language == "sh":
            for line in body.splitlines():
                command, _, comment = line.partition("  #")
                if not command.strip() or command.lstrip().startswith("#"):
                    continue
                if "until Ctrl-C" in comment:
                    print(f"$ {command.strip()} &", flush=True)
                    background = Background(command.strip())
                    running.append(background)
                    background.wait_ready()
                    last = None
                else:
                    exits = EXITS.search(comment)
                    expected = int(exits.group(1)) if exits else 0
                    last = (command.strip(), run_command(command.strip(), expected))
        elif language == "python test":
            run_test_file(body, heading)
        elif language == "python":
            print("$ .venv/bin/python <<'EOF' (README snippet)", flush=True)
            code = subprocess.run(
                [str(ROOT / ".venv/bin/python"), "-c", body], cwd=ROOT, check=False
            ).returncode
            if code != 0:
                raise Failed(f"the Python snippet of section {heading!r} exited {code}")
    stop_all(running)


def run_test_file(body: str, heading: str) -> None:
    """Run ``body`` as a project's test file with pytest; fail unless every test passes."""
    folder = ROOT / ".cache" / "readme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n")  # a project's own, empty config
    (folder / "test_readme_example.py").write_text(body + "\n")
    command = [str(ROOT / ".venv/bin/python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    print(f"$ cd {folder.relative_to(ROOT)} && pytest test_readme_example.py", flush=True)
    code = subprocess.run([*command, "test_readme_example.py"], cwd=folder, check=False).returncode
    if code != 0:
        raise Failed(f"the test file of section {heading!r} did not pass (pytest exit {code})")


def stop_all(running: list[Background]) -> None:
    """Ctrl-C on every background command, the newest first."""
    while running:
        running.pop().interrupt()


def main() -> int:
    """Run README.md's blocks; report the first failure."""
    started = time.monotonic()
    try:
        run(ROOT / "README.md")
    except Failed as failure:
        print(f"README check failed: {failure}", file=sys.stderr)
        return 1
    print(f"README check passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
