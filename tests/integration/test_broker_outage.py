"""A broker outage in a host's log is two lines, and /readyz says it while it lasts.

A host process on a broker of this test's own (a port of its own: the session broker
is not touched) through the client the tier names. The broker is stopped, and started
again once /readyz reports the outage; then a command is answered. What the host logged
at WARNING or above from the stop on is counted: the clients' own lines (kafka-python
logged 123 in a 20 s outage, librdkafka about 500) stay at DEBUG.
"""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.processes import REPO, echo_tree, free_port_pair, kafka_env, onex
from tests.kafka_support import TEST_BROKER

from onex_actors.devinfra import LocalKafka, local_broker
from onex_actors.testing import default_host_log, host_process

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        TEST_BROKER == "tansu", reason="stops and starts an Apache Kafka broker of its own"
    ),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _readyz(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def _wait_for(what: str, predicate: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s"
        time.sleep(0.2)  # polling a real process's HTTP listener


def _tail(log: Path, lines: int = 60) -> str:
    """The end of a host's log: what it saw of the group and the broker, for a failure."""
    return "\n".join(log.read_text().splitlines()[-lines:])


@pytest.fixture
def own_broker() -> Iterator[LocalKafka]:
    broker = local_broker("kafka", free_port_pair(), cache_dir=REPO / ".cache")
    assert isinstance(broker, LocalKafka)
    broker.stop()
    broker.remove_data()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        broker.remove_data()


def test_a_broker_outage_is_two_lines_and_readyz_says_it(
    tmp_path: Path, own_broker: LocalKafka
) -> None:
    node, runtime, contracts = echo_tree(tmp_path, "outage")
    listen = _free_port()
    env = kafka_env(own_broker.bootstrap, ONEX_HTTP__LISTEN=f"127.0.0.1:{listen}")
    log = default_host_log(runtime)
    with host_process(runtime, contracts, env) as host:
        _wait_for("ready", lambda: _readyz(listen)[0] == 200, 60)
        before = log.stat().st_size
        own_broker.stop()
        _wait_for("the outage on /readyz", lambda: _readyz(listen)[0] == 503, 60)
        status, body = _readyz(listen)
        reason = str(body["reason"])
        own_broker.start()
        _wait_for("ready again", lambda: _readyz(listen)[0] == 200, 120)
        # a loaded two-core CI machine restarts the broker slowly: the group may have to
        # rejoin before the command is read, so the answer gets longer than emit's 30 s
        answered = onex(
            "emit", node, '{"after": "outage"}', "--timeout", "90", env=env, timeout_s=120
        )
        host.send_signal(signal.SIGINT)
        host.wait(60)
    assert status == 503
    assert reason.startswith(f"no Kafka broker answers at {own_broker.bootstrap} since ")
    assert answered.returncode == 0, f"{answered.stderr}\nthe host's log ends:\n{_tail(log)}"
    assert json.loads(answered.stdout)["payload"] == {"after": "outage"}
    with open(log) as text:
        text.seek(before)
        said = [
            line for line in text.read().splitlines() if " WARNING " in line or " ERROR " in line
        ]
    assert len(said) == 2, "\n".join(said)
    assert f"Kafka at {own_broker.bootstrap} unreachable: no bootstrap server answers" in said[0]
    assert f"Kafka at {own_broker.bootstrap} answers again, after " in said[1]
