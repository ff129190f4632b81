"""A local broker's pid file never makes ``stop`` or ``kill`` signal another program."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from onex_actors.devinfra._local_kafka import BrokerProcess
from onex_actors.devinfra._processes import is_running, start_time


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not a broker: what a reused process id would name."""
    process = subprocess.Popen(["sleep", "600"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_pid_file_whose_id_was_given_to_another_program_names_no_broker(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    started = start_time(bystander.pid)
    assert started is not None
    broker = BrokerProcess(tmp_path, "Kafka")
    broker.pid_file.write_text(f"{bystander.pid} {started - 1}")  # the broker ran before it
    assert broker.pid() is None
    broker.stop(timeout_s=0)
    broker.kill()
    assert bystander.poll() is None, "the bystander was signalled"


def test_a_pid_file_naming_the_running_broker_is_followed(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    broker = BrokerProcess(tmp_path, "Kafka")
    broker.pid_file.write_text(f"{bystander.pid} {start_time(bystander.pid)}")
    assert broker.pid() == bystander.pid
    broker.stop(timeout_s=30)
    assert not is_running(bystander.pid), "stop left the broker running"
    assert broker.pid() is None
    assert not broker.pid_file.exists()


def test_a_pid_file_without_a_start_time_still_names_a_running_broker(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    """One written before start times were recorded (an older onex-actors)."""
    broker = BrokerProcess(tmp_path, "Kafka")
    broker.pid_file.write_text(str(bystander.pid))
    assert broker.pid() == bystander.pid


def test_an_unreadable_pid_file_names_no_broker(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path, "Kafka")
    broker.pid_file.write_text("not a pid\n")
    assert broker.pid() is None
