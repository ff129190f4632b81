"""``omninode-runtime-host --workers N``: N host processes in one consumer group, supervised.

Real processes on the session's broker: one ready line once every worker is, both
workers serving partitions, a worker killed with SIGKILL started again while the other
answers, and one SIGTERM draining them all.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from tests.integration.kafka_records import create_topics, produce
from tests.integration.processes import REPO, echo_tree, kafka_env, unique, write_contracts

from onex_actors.core import evt_topic
from onex_actors.testing import HOST_COMMAND, host_process, read_line

pytestmark = pytest.mark.integration


def _answered(bootstrap: str, node: str) -> set[str]:
    """The command ids the node's result topic holds answers to (read_committed)."""
    reader = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        consumer_timeout_ms=2000,
    )
    try:
        topic = evt_topic(node)
        partitions = [KafkaTopicPartition(topic, p) for p in reader.partitions_for_topic(topic)]
        reader.assign(partitions)
        reader.seek_to_beginning()
        return {json.loads(record.value)["causation_id"] for record in reader}
    finally:
        reader.close()


def _until(what: str, predicate: Callable[[], bool], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s"
        time.sleep(0.2)  # polling real processes through the broker


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, ConnectionError):
        return False


def _line_with(proc: subprocess.Popen[str], text: str, seen: list[str]) -> str:
    while True:
        line = read_line(proc, timeout_s=90)
        assert line, f"the parent ended before printing {text!r}; it printed {seen}"
        seen.append(line)
        if text in line:
            return line


def test_two_workers_share_the_group_survive_a_kill_and_stop_together(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    node, runtime, contracts = echo_tree(tmp_path, "workers")
    create_topics(kafka_bootstrap, node)
    port = _two_free_ports()  # worker i listens on port + i
    env = kafka_env(kafka_bootstrap, ONEX_HTTP__LISTEN=f"127.0.0.1:{port}")
    seen: list[str] = []
    log = tmp_path / "hosts.log"
    # host_process returns once the parent printed its one ready line (every worker's)
    with host_process(runtime, contracts, env, log=log, args=["--workers", "2"]) as parent:
        workers = _children(parent.pid)
        assert len(workers) == 2, _why_not_two(parent, workers, log)
        # every worker has had partitions of the group: 4 partitions, 2 members
        _until("both workers ready", lambda: _ready(port) and _ready(port + 1))
        first = [str(i) for i in range(50)]
        sent = produce(kafka_bootstrap, node, [{"n": n} for n in first])
        _until("50 answers", lambda: len(_answered(kafka_bootstrap, node)) >= len(sent))
        os.kill(workers[0], signal.SIGKILL)
        killed = _line_with(parent, "exited with status -9: starting it again", seen)
        index = killed.split("]")[0].removeprefix("[worker ")
        more = produce(kafka_bootstrap, node, [{"n": n} for n in range(50, 100)])
        _line_with(parent, f"[worker {index}] ready again", seen)
        now = _children(parent.pid)
        assert len(now) == 2
        # trio's idle worker threads end after 10 s: a worker whose parent-death signal
        # was tied to one (not to the parent's main thread) was stopped then
        time.sleep(11)
        assert _children(parent.pid) == now
        expected = {str(s.command.envelope_id) for s in [*sent, *more]}
        _until("100 answers", lambda: expected <= _answered(kafka_bootstrap, node))
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=90) == 0
        assert parent.stdout is not None
        rest = parent.stdout.read()
    assert "received SIGTERM: stopping 2 workers" in rest
    assert "[worker 0] received SIGTERM: draining" in rest
    assert "[worker 1] received SIGTERM: draining" in rest
    assert f"runtime {runtime} stopped (2 workers)" in rest


def _two_free_ports() -> int:
    """A port that, with the next one, nothing listens on, below the ephemeral range.

    Worker 1 listens on worker 0's port + 1. A port the kernel handed out (bind to 0)
    lies in the ephemeral range, where its neighbour may be any client connection's
    local port at the moment (a CI run saw worker 1 fail with "Address already in use");
    below that range only listeners take ports, and both are checked free.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    chooser = random.Random()
    for _ in range(100):
        port = chooser.randrange(10_000, low - 2)
        try:
            for candidate in (port, port + 1):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no two free ports in 10000-{low - 1} after 100 tries")


def _why_not_two(parent: subprocess.Popen[str], workers: list[int], log: Path) -> str:
    """What the parent said next and the hosts' log: why a worker was missing at ready."""
    said = []
    with contextlib.suppress(TimeoutError):
        while len(said) < 5:
            said.append(read_line(parent, timeout_s=3))
    tail = log.read_text(errors="replace").splitlines()[-60:]
    return (
        f"workers {workers} at the ready line; the parent then said {said}; "
        "the hosts' log ends:\n" + "\n".join(tail)
    )


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, oldest first (Linux's /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if int(fields[1]) == pid:
            children.append((int(fields[19]), int(stat.parent.name)))
    return [child for _, child in sorted(children)]


def test_workers_of_a_disk_store_each_keep_a_folder_of_their_own(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """LMDB's folder is locked by its process: one shared folder stopped the second worker."""
    node, runtime = unique("workers-disk"), unique("runtime-workers-disk")
    fold = (
        f"kind: reducer\nnode_id: {node}\nversion: '0.1.0'\nkey: input.k\n"
        "state: {initial: {n: 0}}\nfold: {assign: {n: state.n + 1}}\n"
    )
    contracts = write_contracts(tmp_path / "tree", runtime, fold, node)
    create_topics(kafka_bootstrap, node)
    folder = tmp_path / "state"
    env = kafka_env(kafka_bootstrap, ONEX_STATE__STORE="disk", ONEX_STATE__PATH=str(folder))
    log = tmp_path / "hosts.log"
    with host_process(runtime, contracts, env, log=log, args=["--workers", "2"]) as parent:
        sent = produce(kafka_bootstrap, node, [{"k": f"k{n}"} for n in range(20)])
        expected = {str(s.command.envelope_id) for s in sent}
        _until("20 answers", lambda: expected <= _answered(kafka_bootstrap, node))
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=90) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["worker-0", "worker-1"]
    for worker in ("worker-0", "worker-1"):
        assert (folder / worker / runtime / node).is_dir()


def test_workers_need_a_kafka_bus(tmp_path: Path) -> None:
    _, runtime, contracts = echo_tree(tmp_path, "workers-inprocess")
    options = ["--runtime-node-id", runtime, "--contracts-dir", str(contracts), "--workers", "2"]
    result = subprocess.run(
        [*HOST_COMMAND, *options, "--config", str(REPO / "config" / "inprocess.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "--workers 2 runs 2 host processes as members of one consumer group" in result.stderr
    assert "bus.kind: kafka" in result.stderr
