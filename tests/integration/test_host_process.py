"""``omninode-runtime-host`` as a real process: start-up line, clean exit on signals."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.processes import REPO, kafka_env, onex, shipped_tree, unique
from tests.kafka_support import KAFKA_FREE, TEST_BROKER, TEST_CLIENT

from onex_actors.testing import HOST_COMMAND, read_line


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    return shipped_tree(tmp_path, "runtime-proc", ["echo-node"], ["local"])


@pytest.fixture
def host(contracts: Path) -> Iterator[subprocess.Popen[str]]:
    args = [*HOST_COMMAND, "--runtime-node-id", "runtime-proc", "--contracts-dir", str(contracts)]
    args += ["--config", str(REPO / "config" / "inprocess.yaml")]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()


@KAFKA_FREE
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_drains_and_exits_zero(host: subprocess.Popen[str], signum: signal.Signals) -> None:
    ready = read_line(host)
    assert ready.startswith(
        "runtime runtime-proc@0.1.0 ready: hosting echo-node (local); bus inprocess"
    )
    host.send_signal(signum)
    assert host.wait(timeout=30) == 0
    assert host.stdout is not None
    rest = host.stdout.read()
    assert f"received {signum.name}: draining" in rest
    assert "runtime runtime-proc stopped" in rest


@KAFKA_FREE
def test_bad_runtime_id_is_one_clear_line(contracts: Path) -> None:
    result = subprocess.run(
        [*HOST_COMMAND, "--runtime-node-id", "ghost", "--contracts-dir", str(contracts)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "ONEX_BUS__KIND": "inprocess"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {contracts}/runtime/ghost.yaml: no runtime contract 'ghost' "
        f"(runtimes in {contracts}: runtime-proc)"
    ]


@KAFKA_FREE
def test_bad_environment_override_names_the_variable(contracts: Path) -> None:
    result = subprocess.run(
        [*HOST_COMMAND, "--runtime-node-id", "runtime-proc", "--contracts-dir", str(contracts)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "ONEX_HTTP__TIMEOUT_S": "soon"},
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: environment variable ONEX_HTTP__TIMEOUT_S: key 'http.timeout_s'")


def test_secrets_are_not_logged_at_debug(
    tmp_path: Path, kafka_bootstrap: str, postgres_dsn: str
) -> None:
    """A database password stays out of a host's DEBUG log (the clients log a lot there).

    The Kafka SASL and key passwords go through the same redaction; a broker without
    SASL refuses them at start-up, so tests/unit/test_config.py covers those.
    """
    db_password = "pg-secret-hunter3"
    runtime = unique("runtime-secrets")
    contracts = shipped_tree(tmp_path, runtime, ["echo-node", "query-user"], ["local", "db"])
    other = "kafka-python" if TEST_CLIENT == "confluent" else "confluent"
    env = kafka_env(
        kafka_bootstrap,
        DATABASE_URL=postgres_dsn.replace("postgres@", f"postgres:{db_password}@"),
        ONEX_KAFKA__CLIENT=other,  # the flag below wins over the environment
    )
    args = [*HOST_COMMAND, "--runtime-node-id", runtime, "--contracts-dir", str(contracts)]
    args += ["--log-level", "DEBUG", "--kafka-client", TEST_CLIENT]
    log_file = tmp_path / "host.log"
    with (
        open(log_file, "w") as stderr,
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env) as proc,
    ):
        ready = read_line(proc)
        assert " ready: " in ready
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    log = log_file.read_text()
    assert proc.returncode == 0, log[-2000:]
    assert f"bus kafka ({TEST_CLIENT})" in ready
    assert " DEBUG " in log
    assert db_password not in log


@KAFKA_FREE
def test_onex_call_runs_a_node_in_process_without_a_broker(tmp_path: Path) -> None:
    contracts = shipped_tree(tmp_path, "runtime-call", ["echo-node"], ["local"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
    args = ["--runtime", "runtime-call", "--contracts-dir", str(contracts)]
    answered = onex("call", "echo-node", '{"hello": "world"}', *args, env=env, timeout_s=60)
    assert answered.returncode == 0, answered.stderr
    result = json.loads(answered.stdout)
    assert (result["type"], result["status"], result["payload"]) == (
        "evt",
        "ok",
        {"hello": "world"},
    )
    refused = onex("call", "query-user", "{}", *args, env=env, timeout_s=60)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: runtime 'runtime-call' does not host 'query-user' (it hosts echo-node); "
        "pass --runtime with one that does"
    )


@KAFKA_FREE
def test_onex_call_without_runtime_runs_the_one_runtime_hosting_the_node(tmp_path: Path) -> None:
    contracts = shipped_tree(tmp_path, "runtime-only", ["echo-node"], ["local"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEX_")}
    tree = ["--contracts-dir", str(contracts)]
    answered = onex("call", "echo-node", '{"n": 1}', *tree, env=env, timeout_s=60)
    assert answered.returncode == 0, answered.stderr
    assert answered.stderr.strip() == (
        "note: running runtime-only, the runtime that hosts 'echo-node'"
    )
    assert json.loads(answered.stdout)["payload"] == {"n": 1}
    typo = onex("call", "echo-nod", "{}", *tree, env=env, timeout_s=60)
    assert typo.returncode == 1
    assert typo.stderr.strip() == (
        f"error: no runtime in {contracts} hosts 'echo-nod'. Did you mean 'echo-node'? "
        "Hosted nodes: echo-node"
    )


def test_on_kafka_ready_means_assigned_and_the_log_is_ours(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """At the default level only the host's own lines are INFO; "ready" waits for partitions."""
    runtime = unique("runtime-ready")
    contracts = shipped_tree(tmp_path, runtime, ["echo-node"], ["local"])
    args = [*HOST_COMMAND, "--runtime-node-id", runtime, "--contracts-dir", str(contracts)]
    env = kafka_env(kafka_bootstrap, PYTHONUNBUFFERED="1")
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as proc:
        try:
            lines = _lines_of(proc)  # stderr and stdout in one pipe: in the order written
            before_ready = []
            while " ready: " not in (line := lines.get(timeout=120)):
                assert line, "the host ended before it was ready:\n" + "".join(before_ready)
                before_ready.append(line)
            group = line.rsplit("consumer group ", 1)[1].strip()
            assigned = (
                _assigned_partitions(kafka_bootstrap, group) if TEST_BROKER == "kafka" else []
            )
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        finally:
            proc.kill()  # a no-op once it exited; else the block's own wait never ends
    rest = list(iter(lines.get, ""))
    log = [*before_ready, line, *rest]
    assert proc.returncode == 0, "\n".join(log)[-2000:]
    assert any(f"consumer group {group}: partitions assigned" in x for x in before_ready)
    if TEST_BROKER == "kafka":  # tansu's DescribeGroups reports no member assignments
        assert assigned, f"ready was printed while group {group} had no partitions assigned"
    ours = [x for x in log if " INFO onex_actors." in x]
    foreign = [x for x in log if " INFO " in x and x not in ours]
    assert ours, "the host's own start-up lines are missing"
    assert foreign == []


def _lines_of(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """Every line ``proc`` prints, from a reader thread; ``""`` once it closed its output."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for printed in proc.stdout:
            lines.put(printed)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    return lines


def _assigned_partitions(bootstrap: str, group: str) -> list[tuple[str, int]]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    (future,) = admin.describe_consumer_groups([group], request_timeout=10).values()
    description = future.result()
    return [
        (tp.topic, tp.partition)
        for member in description.members
        for tp in member.assignment.topic_partitions
    ]
