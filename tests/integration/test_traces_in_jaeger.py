"""A flow across two host processes on Apache Kafka is one trace in a real Jaeger.

Jaeger is built from the Go module proxy once per machine (``devinfra.jaeger_binary``,
cached in .cache/jaeger) and runs on 127.0.0.1 with in-memory storage; the hosts export
to its OTLP/HTTP receiver, and the test reads the trace back through its query API.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.processes import REPO, kafka_env, onex, unique
from tests.kafka_support import DEFAULT_TIER

from onex_actors.core import cmd_topic, evt_topic
from onex_actors.devinfra import LocalJaeger, jaeger_binary
from onex_actors.testing import host_process

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not DEFAULT_TIER,
        reason="runs once, in the default tier (Apache Kafka, the default client's tier)",
    ),
]


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalJaeger]:
    local = LocalJaeger(jaeger_binary(REPO / ".cache"), tmp_path_factory.mktemp("jaeger"))
    local.start()
    try:
        yield local
    finally:
        local.stop()


def tree(root: Path, runtimes: dict[str, str], then: tuple[str, str]) -> Path:
    """Two echo nodes, the first's result forwarded to the second; each runtime hosts one."""
    first, second = then
    (root / "nodes").mkdir(parents=True)
    (root / "runtime").mkdir()
    (root / "nodes" / f"{first}.yaml").write_text(
        f"kind: effect\nnode_id: {first}\nversion: '0.1.0'\neffect_type: local\n"
        f"then: {{node_id: {second}, payload: {{n: '$.result.n'}}}}\n"
    )
    (root / "nodes" / f"{second}.yaml").write_text(
        f"kind: effect\nnode_id: {second}\nversion: '0.1.0'\neffect_type: local\n"
    )
    for runtime, node in runtimes.items():
        (root / "runtime" / f"{runtime}.yaml").write_text(
            f"kind: runtime_host\nnode_id: {runtime}\nversion: '0.1.0'\n"
            f"subscriptions: {{cmd_topics: ['{cmd_topic(node)}'], consume: hosted}}\n"
            f"handlers: {{families: [local]}}\nhost_selector: {{node_ids: [{node}]}}\n"
        )
    return root


def tag(span: dict[str, Any], key: str) -> Any:
    return next((t["value"] for t in span.get("tags", []) if t["key"] == key), None)


def test_a_flow_across_two_host_processes_is_one_trace_in_causal_order(
    tmp_path: Path, kafka_bootstrap: str, jaeger: LocalJaeger
) -> None:
    first, second = unique("traced-first"), unique("traced-second")
    runtime_a, runtime_b = unique("runtime-traced-a"), unique("runtime-traced-b")
    contracts = tree(tmp_path, {runtime_a: first, runtime_b: second}, (first, second))
    env = kafka_env(
        kafka_bootstrap,
        ONEX_TRACING__ENABLED="true",
        ONEX_TRACING__OTLP_ENDPOINT=jaeger.otlp_endpoint,
    )
    config = str(REPO / "config" / "kafka.yaml")
    with (
        host_process(runtime_b, contracts, env) as host_b,
        host_process(runtime_a, contracts, env) as host_a,
    ):
        sent = onex("emit", first, '{"n": 1}', "--result-from", second, "--config", config, env=env)
        for host in (host_a, host_b):  # a clean stop exports what the host still holds
            host.send_signal(signal.SIGTERM)
            assert host.wait(timeout=60) == 0
    assert sent.returncode == 0, sent.stderr
    result = json.loads(sent.stdout)
    assert result["node_id"] == second
    trace_id = result["headers"]["traceparent"].split("-")[1]

    deadline = time.monotonic() + 30
    spans = jaeger.trace(trace_id)
    while {s["service"] for s in spans} != {runtime_a, runtime_b}:
        assert time.monotonic() < deadline, f"Jaeger holds only {spans}"
        time.sleep(0.2)  # polls the receiver's own state, bounded by the deadline
        spans = jaeger.trace(trace_id)

    def one(name: str) -> dict[str, Any]:
        (span,) = [s for s in spans if s["operationName"] == name]
        return span

    def parent(span: dict[str, Any]) -> str | None:
        refs = [r for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
        return refs[0]["spanID"] if refs else None

    got_first = one(f"process {cmd_topic(first)}")
    sent_on = one(f"create {cmd_topic(second)}")
    got_second = one(f"process {cmd_topic(second)}")
    answered = one(f"create {evt_topic(second)}")
    handled_first, handled_second = one(f"handle {first}"), one(f"handle {second}")
    assert (got_first["service"], got_second["service"]) == (runtime_a, runtime_b)
    assert (sent_on["service"], answered["service"]) == (runtime_a, runtime_b)
    assert parent(got_first) is None  # the command came from outside: the flow starts here
    assert parent(handled_first) == got_first["spanID"]
    assert parent(sent_on) == got_first["spanID"]  # host a created the then: command
    assert parent(got_second) == sent_on["spanID"]  # host b handled it, through Kafka
    assert parent(handled_second) == got_second["spanID"]
    assert parent(answered) == got_second["spanID"]
    assert got_first["startTime"] <= sent_on["startTime"] <= got_second["startTime"]
    assert tag(sent_on, "span.kind") == "producer"
    assert tag(got_second, "span.kind") == "consumer"
    assert tag(got_second, "messaging.system") == "kafka"
    assert tag(got_second, "messaging.destination.name") == cmd_topic(second)
    assert tag(got_second, "messaging.consumer.group.name") == runtime_b
    assert result["headers"]["traceparent"].split("-")[2] == answered["spanID"]
