"""The first-use install of llama.cpp's server: never silent, clear when it fails or stops.

The steps run real child processes standing in for pip; each waits for what the test
waits for (a file the progress callback writes), never for a length of time.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from tests.kafka_support import KAFKA_FREE

from onex_actors.core import ConfigError
from onex_actors.devinfra._chat_runner import MANUAL_INSTALL, run_with_progress

pytestmark = [pytest.mark.integration, KAFKA_FREE]

WAIT_FOR_FILE = """
import os, sys, time
from pathlib import Path
print("pid", os.getpid())
print("[3/7] Building CXX object ggml.o", flush=True)
deadline = time.monotonic() + 30
while not Path(sys.argv[1]).exists():
    if time.monotonic() > deadline:
        sys.exit(9)
    time.sleep(0.01)
"""
"""Prints a ninja step, then runs until the file named by its argument exists."""


def test_a_long_step_says_how_far_it_got_until_it_is_done(tmp_path: Path) -> None:
    heard: list[str] = []
    released = tmp_path / "released"

    def say(line: str) -> None:
        heard.append(line)
        if "step 3 of 7" in line:
            released.touch()  # the child ends only once its step was said

    run_with_progress(
        "building the thing",
        [sys.executable, "-c", WAIT_FOR_FILE, str(released)],
        log=tmp_path / "build.log",
        say=say,
        every_s=0.05,
    )
    assert heard[0] == "building the thing ..."
    progress = heard[1:-1]
    assert progress, heard
    assert all(line.startswith("  ... ") for line in progress), heard
    assert progress[-1].endswith(", step 3 of 7")
    assert heard[-1].startswith("  done in ")


def test_a_failing_step_names_its_log_its_output_and_the_manual_install(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    with pytest.raises(ConfigError) as failed:
        run_with_progress(
            "building the thing",
            [sys.executable, "-c", "print('CMake Error: no compiler'); raise SystemExit(3)"],
            log=log,
            say=lambda _line: None,
        )
    message = str(failed.value)
    assert message.startswith(f"building the thing failed (exit 3); its log: {log}")
    assert "CMake Error: no compiler" in message
    assert message.endswith(MANUAL_INSTALL)


def test_a_stopped_step_kills_its_process(tmp_path: Path) -> None:
    stop = threading.Event()
    never = tmp_path / "never"

    def say(line: str) -> None:
        if "step 3 of 7" in line:  # the child runs, its pid in the log
            stop.set()  # as a host's Ctrl-C during the build does

    log = tmp_path / "build.log"
    with pytest.raises(ConfigError, match="building the thing: stopped before it finished"):
        run_with_progress(
            "building the thing",
            [sys.executable, "-c", WAIT_FOR_FILE, str(never)],
            log=log,
            say=say,
            every_s=0.05,
            stop=stop,
        )
    pid = int(log.read_text().split()[1])
    assert not Path(f"/proc/{pid}").exists(), "the step's process outlived the stop"
