"""Moving a node between runtimes on the real broker: no replayed history, no node answered twice.

Host processes of two runtimes of one contract tree, both able to host one echo node,
on the session's broker. Each runtime is a consumer group of its own; before joining,
a host resumes its nodes' command partitions where any runtime of the tree last
committed them (``app/_hand_over.py``).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from tests.integration.kafka_records import create_topics, produce
from tests.integration.processes import kafka_env, unique
from tests.kafka_support import TEST_BROKER

from onex_actors.core import cmd_topic, evt_topic, home_partition
from onex_actors.testing import HOST_COMMAND, host_process

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(TEST_BROKER == "tansu", reason="tansu 0.6 lists no consumer groups"),
]


def _tree(root: Path, node: str, runtimes: list[str], node_extra: str = "") -> Path:
    (root / "runtime").mkdir(parents=True)
    (root / "nodes").mkdir()
    for runtime in runtimes:
        topics = f"'{cmd_topic(node)}', '{cmd_topic(runtime)}'"
        (root / "runtime" / f"{runtime}.yaml").write_text(
            f"kind: runtime_host\nnode_id: {runtime}\nversion: '0.1.0'\n"
            f"subscriptions: {{cmd_topics: [{topics}]}}\n"
            f"handlers: {{families: [local]}}\nhost_selector: {{node_ids: [{node}]}}\n"
        )
    (root / "nodes" / f"{node}.yaml").write_text(
        f"kind: effect\nnode_id: {node}\nversion: '0.1.0'\neffect_type: local\n{node_extra}"
    )
    return root


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _results(bootstrap: str, node: str) -> int:
    """How many records the node's result topic holds."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [
            KafkaTopicPartition(evt_topic(node), p)
            for p in reader.partitions_for_topic(evt_topic(node)) or ()
        ]
        return sum(reader.end_offsets(partitions).values()) if partitions else 0
    finally:
        reader.close()


def _committed_to_end(bootstrap: str, group: str, node: str) -> bool:
    """Whether ``group`` has committed every command partition of ``node`` to its end."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    reader = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        topic = cmd_topic(node)
        partitions = [KafkaTopicPartition(topic, p) for p in reader.partitions_for_topic(topic)]
        ends = reader.end_offsets(partitions)
        committed = admin.list_group_offsets({group: None}).get(group, {})
        return all(
            end == 0 or (tp in committed and committed[tp].offset == end)
            for tp, end in ends.items()
        )
    finally:
        reader.close()
        admin.close()


def _wait_for(what: str, predicate: object, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s"
        time.sleep(0.2)  # polling real processes through the broker


def _stop(host: subprocess.Popen[str]) -> None:
    host.send_signal(signal.SIGINT)
    assert host.wait(timeout=60) == 0


def _key_for_each_partition(partitions: int) -> list[str]:
    """A partition key for each of ``partitions``, in partition order (Kafka's partitioner)."""
    found: dict[int, str] = {}
    candidate = 0
    while len(found) < partitions:
        key = f"key-{candidate}"
        found.setdefault(home_partition(key.encode(), partitions), key)
        candidate += 1
    return [found[p] for p in range(partitions)]


def _readyz(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
        return dict(json.loads(answer.read()))


def test_a_moved_node_resumes_where_the_other_runtime_left_off(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    node, first, second = unique("move"), unique("runtime-a"), unique("runtime-b")
    contracts = _tree(tmp_path, node, [first, second])
    create_topics(kafka_bootstrap, node)
    # before any runtime, 5 in each of the 4 partitions: a partition with none would
    # have no commit of the first group's to resume from (1 run in about 80 by chance)
    for partition, key in enumerate(_key_for_each_partition(4)):
        produce(kafka_bootstrap, node, [{"n": 5 * partition + i} for i in range(5)], key=key)
    with host_process(first, contracts, kafka_env(kafka_bootstrap)) as host:
        _wait_for("20 answers", lambda: _results(kafka_bootstrap, node) == 20)
        _wait_for("the commit", lambda: _committed_to_end(kafka_bootstrap, first, node))
        _stop(host)
    listen = _free_port()
    env = kafka_env(kafka_bootstrap, ONEX_HTTP__LISTEN=f"127.0.0.1:{listen}")
    with host_process(second, contracts, env) as host:
        produce(kafka_bootstrap, node, [{"n": i} for i in range(20, 25)])
        _wait_for("the new commands", lambda: _committed_to_end(kafka_bootstrap, second, node))
        resumed = _readyz(listen)["resumed"]
        _stop(host)
    assert _results(kafka_bootstrap, node) == 25, "the old commands were answered again"
    assert isinstance(resumed, dict)
    assert resumed[node]["group"] == second
    assert resumed[node]["source"] == f"group {first}"
    assert sum(resumed[node]["offsets"].values()) == 20


def test_a_second_runtime_refuses_a_node_another_runtime_is_answering(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    node, first, second = unique("twice"), unique("runtime-a"), unique("runtime-b")
    contracts = _tree(tmp_path, node, [first, second])
    create_topics(kafka_bootstrap, node)
    with host_process(first, contracts, kafka_env(kafka_bootstrap)):
        produce(kafka_bootstrap, node, [{"n": 1}])
        _wait_for("the commit", lambda: _committed_to_end(kafka_bootstrap, first, node))
        env = kafka_env(kafka_bootstrap, ONEX_KAFKA__HAND_OVER_WAIT_S="2")
        refused = subprocess.run(
            [*HOST_COMMAND, "--runtime-node-id", second, "--contracts-dir", str(contracts)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
    assert refused.returncode != 0
    assert (
        f"runtime {second!r} will not start: node {node!r} is hosted by the running consumer "
        f"group(s) {first} (waited 2 s for them to leave)"
    ) in refused.stderr


def test_start_from_latest_skips_what_was_sent_before_any_runtime(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    node, runtime = unique("latest"), unique("runtime-latest")
    contracts = _tree(tmp_path, node, [runtime], node_extra="start_from: latest\n")
    create_topics(kafka_bootstrap, node)
    produce(kafka_bootstrap, node, [{"n": i} for i in range(3)])
    with host_process(runtime, contracts, kafka_env(kafka_bootstrap)) as host:
        produce(kafka_bootstrap, node, [{"n": i} for i in range(3, 5)])
        _wait_for("the commit", lambda: _committed_to_end(kafka_bootstrap, runtime, node))
        _stop(host)
    assert _results(kafka_bootstrap, node) == 2
