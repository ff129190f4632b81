"""At-least-once over a real broker when the host process dies or is stopped."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.http_server import recording_server
from tests.integration.kafka_records import Results, committed, create_topics, produce
from tests.integration.processes import (
    echo_tree,
    kafka_env,
    unique,
    write_contracts,
)

from onex_actors.testing import CommandStream, default_host_log, host_process

COMMANDS = 10_000


def test_kill_9_mid_stream_loses_nothing(tmp_path: Path, kafka_bootstrap: str) -> None:
    node, runtime, contracts = echo_tree(tmp_path, "echo-kill")
    env = kafka_env(kafka_bootstrap)
    create_topics(kafka_bootstrap, node)
    results = Results(kafka_bootstrap, node)
    # Commands keep arriving while the host works, so the kill lands mid-stream
    # however fast the host is.
    with CommandStream(kafka_bootstrap, node, COMMANDS) as stream:
        with host_process(runtime, contracts, env) as host:
            results.read_until(lambda r: len(r.by_cause) >= COMMANDS // 5, timeout_s=120)
            host.send_signal(signal.SIGKILL)
            host.wait()
        at_kill = committed(kafka_bootstrap, runtime, node)
        results.read_to_end()
        answered_before = set(results.by_cause)
        with host_process(runtime, contracts, env):
            sent = stream.join()
            results.read_until(lambda r: len(r.by_cause) >= COMMANDS, timeout_s=180)
    results.close()
    window = sum(1 for s in sent if s.offset >= at_kill.get(s.partition, 0))
    duplicated = [s for s in sent if results.by_cause[str(s.envelope_id)] > 1]
    report = f"kill -9 after {len(answered_before)} answers: {len(duplicated)} duplicated"
    print(f"{report}, uncommitted window {window}")  # noqa: T201  (figure asked for; see -s)
    assert all(results.by_cause[str(s.envelope_id)] >= 1 for s in sent)
    assert 0 < len(answered_before) < COMMANDS
    # At least once: only records past the last commit may be handled again. (Counting
    # them against the answers read back at the kill raced the broker, which may still
    # append a produce request the killed host had sent.)
    assert all(s.offset >= at_kill.get(s.partition, 0) for s in duplicated)


def test_slow_envelope_is_never_committed_past(tmp_path: Path, kafka_bootstrap: str) -> None:
    node, runtime = unique("proxy-slow"), unique("runtime-slow")
    with recording_server(gated=True) as server:
        node_yaml = (
            f"kind: effect\nnode_id: {node}\nversion: '0.1.0'\neffect_type: http\n"
            # the commit rule, not key order, is under test: one key, four at a time
            "concurrency: 4\nordering: none\ntimeout_s: 120\n"
            f"http: {{url_template: '{server.base_url}/{{path}}', method: GET, body: none}}\n"
        )
        contracts = write_contracts(tmp_path, runtime, node_yaml, node)
        env = kafka_env(kafka_bootstrap, ONEX_HTTP__ALLOWLIST=f"['127.0.0.1:{server.port}']")
        create_topics(kafka_bootstrap, node)
        results = Results(kafka_bootstrap, node)
        paths = ["fast"] * 5 + ["gate"] + ["fast"] * 14
        with host_process(runtime, contracts, env) as host:
            sent = produce(kafka_bootstrap, node, [{"path": p} for p in paths], key="one-partition")
            slow = sent[5]
            others = {str(s.command.envelope_id) for s in sent if s is not slow}
            results.read_until(lambda r: others <= set(r.by_cause), timeout_s=60)
            results.read_for(1.5)  # three commit intervals pass while k is still in flight
            at_kill = committed(kafka_bootstrap, runtime, node)
            host.send_signal(signal.SIGKILL)
            host.wait()
        assert str(slow.command.envelope_id) not in results.by_cause
        assert at_kill.get(slow.partition, 0) <= slow.offset
        server.gate.set()
        with host_process(runtime, contracts, env):
            results.read_until(lambda r: str(slow.command.envelope_id) in r.by_cause, timeout_s=60)
        results.close()
    assert all(s.partition == slow.partition for s in sent)


def test_sigterm_under_load_drains_and_a_restart_repeats_nothing(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    node, runtime, contracts = echo_tree(tmp_path, "echo-term")
    env = kafka_env(kafka_bootstrap)
    create_topics(kafka_bootstrap, node)
    results = Results(kafka_bootstrap, node)
    total = 10_000  # a drain answers what was fetched: up to inbox + 5 polls more
    with CommandStream(kafka_bootstrap, node, total) as stream:
        with host_process(runtime, contracts, env) as host:
            results.read_until(lambda r: len(r.by_cause) >= total // 5, timeout_s=120)
            host.send_signal(signal.SIGTERM)
            assert host.wait(timeout=60) == 0
        stopped = default_host_log(runtime).read_text()
        assert "runtime_stopped drained=True" in stopped, stopped[-3000:]  # not timed out
        results.read_to_end()
        answered_before = len(results.by_cause)
        with host_process(runtime, contracts, env):
            sent = stream.join()
            results.read_until(lambda r: len(r.by_cause) >= total, timeout_s=180)
            results.read_for(1.0)
    results.close()
    duplicates = sum(results.by_cause.values()) - len(results.by_cause)
    assert answered_before < total
    assert all(results.by_cause[str(s.envelope_id)] >= 1 for s in sent)
    assert duplicates == 0
