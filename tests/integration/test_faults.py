"""Every fault scenario of ``bench/faults.py``, smaller: nothing lost, the host survives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.kafka_support import TEST_BROKER, TEST_CLIENT

from onex_actors.devinfra import EmbeddedPostgres
from onex_actors.testing import RawRecord, render_reports
from onex_actors.testing._netns import namespaces, netns_unavailable
from onex_actors.testing.faults import (
    FaultLab,
    ScenarioResult,
    always_raising,
    kill_9_db_rows,
    kill_9_restart,
    malformed_records,
    move_node,
    network_partition,
    node_kills,
    postgres_outage,
    record_edges,
    second_host,
    sigterm_restart,
    three_hosts,
)
from onex_actors.testing.strategies import hostile_records, malformed_record_values, sample

SESSION_MS = 2_000 if TEST_BROKER == "tansu" else 6_000


@pytest.fixture
def lab(kafka_bootstrap: str, tmp_path: Path) -> FaultLab:
    return FaultLab(
        kafka_bootstrap, tmp_path, session_timeout_ms=SESSION_MS, deadline_s=120, client=TEST_CLIENT
    )


EXACTLY_ONCE_RUNS = pytest.mark.skipif(
    TEST_BROKER == "tansu", reason="delivery: exactly_once needs Kafka transactions (not tansu)"
)


@pytest.fixture
def eos_lab(kafka_bootstrap: str, tmp_path: Path) -> FaultLab:
    """A lab whose hosts run ``delivery: exactly_once``; its reader sees committed records."""
    return FaultLab(
        kafka_bootstrap,
        tmp_path,
        session_timeout_ms=SESSION_MS,
        deadline_s=120,
        delivery="exactly_once",
        client=TEST_CLIENT,
    )


REDUCERS_RUN = pytest.mark.skipif(
    TEST_BROKER == "tansu", reason="reducer state is checked on Apache Kafka (compaction, EOS)"
)


@pytest.fixture(params=["at_least_once", "exactly_once"])
def fold_lab(kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest) -> FaultLab:
    """A lab whose node under fault is a reducer; commits every 0.1 s, so a kill finds
    some committed and some not."""
    return FaultLab(
        kafka_bootstrap,
        tmp_path,
        session_timeout_ms=SESSION_MS,
        deadline_s=120,
        delivery=request.param,
        client=TEST_CLIENT,
        workload="fold",
        host_env={"ONEX_COMMIT_INTERVAL_S": "0.1"},
    )


def table(result: ScenarioResult) -> str:
    return render_reports([(result.name, result.report, result.note)])


def test_kill_9_and_restart(lab: FaultLab) -> None:
    result = kill_9_restart(lab, 3000)
    assert result.passed, table(result)
    assert result.report.reordered == 0


def test_sigterm_and_restart_repeats_nothing(lab: FaultLab) -> None:
    result = sigterm_restart(lab, 3000)
    assert result.passed, table(result)
    assert result.report.duplicated == 0


@pytest.fixture
def netns() -> None:
    """Skip unless this machine can create network namespaces (root, iproute2)."""
    if TEST_BROKER == "tansu":
        pytest.skip("the partition scenarios run on Apache Kafka")
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(f"no network partitions here: {reason}")


@pytest.mark.usefixtures("netns")
def test_a_host_cut_off_past_its_session_loses_nothing_and_rejoins(lab: FaultLab) -> None:
    before = namespaces()
    result = network_partition(lab, 1500, cut_s=3 * lab.session_s, stream_s=15)
    assert result.passed, table(result)
    assert "the cut-off host said it lost partitions: True" in result.note
    left = set(namespaces()) - set(before)  # other processes' namespaces may come and go
    assert not left, f"the scenario left network namespaces behind: {left}"


@EXACTLY_ONCE_RUNS
@pytest.mark.usefixtures("netns")
def test_a_zombie_host_commits_nothing_another_host_owns(eos_lab: FaultLab) -> None:
    result = network_partition(eos_lab, 1500, cut_s=3 * eos_lab.session_s, stream_s=15)
    assert result.passed, table(result)
    assert result.report.duplicated == 0, table(result)


@pytest.mark.skipif(TEST_BROKER == "tansu", reason="tansu 0.6 lists no group offsets")
def test_a_node_moved_to_another_runtime_answers_nothing_a_commit_covered(lab: FaultLab) -> None:
    result = move_node(lab, 2000, kill=True, stream_s=10)
    assert result.passed, table(result)
    assert "0 commands A had committed answered again" in result.note


@EXACTLY_ONCE_RUNS
def test_a_node_moved_to_another_runtime_exactly_once(eos_lab: FaultLab) -> None:
    result = move_node(eos_lab, 2000, kill=False, stream_s=10)
    assert result.passed, table(result)
    assert result.report.duplicated == 0, table(result)


def test_a_second_host_joining_then_killed_loses_nothing(lab: FaultLab) -> None:
    result = second_host(lab, 3000)
    assert result.passed, table(result)


@EXACTLY_ONCE_RUNS
def test_kill_9_and_restart_exactly_once(eos_lab: FaultLab) -> None:
    result = kill_9_restart(eos_lab, 3000)
    assert result.passed, table(result)
    assert result.report.duplicated == 0, table(result)


@EXACTLY_ONCE_RUNS
def test_a_second_host_joining_then_killed_exactly_once(eos_lab: FaultLab) -> None:
    result = second_host(eos_lab, 3000)
    assert result.passed, table(result)
    assert result.report.duplicated == 0, table(result)


@REDUCERS_RUN
def test_a_reducer_killed_mid_stream_restores_every_key_exactly(fold_lab: FaultLab) -> None:
    result = fold_lab.with_state_checked(kill_9_restart(fold_lab, 4000))
    assert result.passed, table(result)
    assert result.keys == 16
    assert result.keys_wrong == 0, table(result)
    if fold_lab.delivery == "exactly_once":
        assert result.report.duplicated == 0, table(result)


@REDUCERS_RUN
def test_a_reducer_across_a_second_host_joining_then_killed(fold_lab: FaultLab) -> None:
    result = fold_lab.with_state_checked(second_host(fold_lab, 3000, stream_s=10))
    assert result.passed, table(result)
    assert result.keys_wrong == 0, table(result)
    if fold_lab.delivery == "exactly_once":
        assert result.report.duplicated == 0, table(result)


@REDUCERS_RUN
@EXACTLY_ONCE_RUNS
def test_workflows_killed_mid_stream_each_answer_once_with_their_input(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    lab = FaultLab(
        kafka_bootstrap,
        tmp_path,
        session_timeout_ms=SESSION_MS,
        deadline_s=120,
        delivery="exactly_once",
        client=TEST_CLIENT,
        workload="workflow",
        host_env={"ONEX_COMMIT_INTERVAL_S": "0.1"},
    )
    result = lab.with_state_checked(kill_9_restart(lab, 1500))
    assert result.passed, table(result)
    assert result.keys == 1500  # every start read back, each with its answer checked
    assert result.keys_wrong == 0, table(result)
    assert result.report.duplicated == 0, table(result)


def test_three_hosts_one_killed_one_added_lose_nothing(lab: FaultLab) -> None:
    result = three_hosts(lab, 3000)
    assert result.passed, table(result)


def test_a_node_killed_under_load_loses_nothing(lab: FaultLab) -> None:
    result = node_kills(lab, 1000, kills=100)
    assert result.passed, table(result)
    assert result.report.duplicated == 0
    assert result.report.reordered == 0  # a batch handed back at a kill keeps its order
    assert "100 kills" in result.note


def test_a_handler_that_always_raises_stops_its_node_only(lab: FaultLab) -> None:
    result = always_raising(lab, 30)
    assert result.passed, table(result)  # passed: the sibling stayed healthy, the bad node not
    assert result.report.dead_lettered == 30  # every command of the raising node


def test_malformed_records_are_each_answered_or_dead_lettered(lab: FaultLab) -> None:
    result = malformed_records(lab, lambda node: sample(malformed_record_values(node), 150))
    assert result.passed, table(result)
    assert result.report.dead_lettered > 0


def test_whole_records_from_every_corner_are_answered_and_committed(lab: FaultLab) -> None:
    def records(node: str) -> list[RawRecord]:
        strategy = hostile_records(node, envelope_limit=64 * 1024, producer_limit=60_000)
        # and one plain record over the envelope limit: in one CI run none of the
        # sample's eight (keyed, with headers, compressed) was counted as oversize
        return [*sample(strategy, 200), RawRecord(b" " * (64 * 1024 + 1))]

    result = record_edges(lab, records)
    assert result.passed, table(result)
    assert result.committed_to_end
    errors = result.report.errors
    for kind in ("no_value", "not_json", "schema", "oversize", "result_too_large"):
        assert errors[kind] > 0, (kind, errors)


BROKER_OUTAGE = """
import json, sys
from pathlib import Path
from onex_actors.devinfra import LocalKafka
from onex_actors.testing import committed_offsets, default_host_log, end_offsets
from onex_actors.core import cmd_topic, evt_topic
from onex_actors.testing.faults import FaultLab, broker_outage
broker = LocalKafka(port=29192, controller_port=29193)
broker.stop()
broker.remove_data()
try:
    lab = FaultLab(
        broker.start(),
        Path(sys.argv[1]),
        broker=broker,
        deadline_s=180,
        client=sys.argv[2],
        delivery=sys.argv[3],
    )
    result = broker_outage(lab, 2000, outage_s=5)
    if not result.passed:  # where the commands stopped: read while the broker is up
        setup = lab.setups[-1]
        for topic in (cmd_topic(setup.node), evt_topic(setup.node)):
            print(topic, "ends", end_offsets(lab.bootstrap, topic), file=sys.stderr)
        committed = committed_offsets(lab.bootstrap, setup.runtime, cmd_topic(setup.node))
        print("committed", committed, file=sys.stderr)
        log = default_host_log(setup.runtime).read_text()
        print("host log tail:", log[-6000:], file=sys.stderr)
finally:
    broker.stop()
    broker.remove_data()
report = result.report
print(json.dumps([
    result.passed, report.sent, report.answered, len(report.lost), report.duplicated, result.note
]))
"""


@pytest.mark.skipif(TEST_BROKER == "tansu", reason="stops a broker: tansu keeps no data")
@pytest.mark.parametrize(
    "delivery",
    ["at_least_once", "exactly_once"],
)
def test_the_broker_stopped_mid_run_loses_nothing(tmp_path: Path, delivery: str) -> None:
    # In a process of its own, with a broker of its own: the scenario stops the broker,
    # and kafka-python leaks the sockets of the connections refused meanwhile.
    run = subprocess.run(
        [sys.executable, "-c", BROKER_OUTAGE, str(tmp_path), TEST_CLIENT, delivery],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    passed, sent, answered, lost, duplicated, note = json.loads(run.stdout.splitlines()[-1])
    assert (passed, sent, answered, lost) == (True, 2000, 2000, 0), (note, run.stderr[-8000:])
    if delivery == "exactly_once":  # the outage may outlast a transaction's timeout
        assert duplicated == 0, note


def test_postgres_stopped_mid_run_is_ridden_out(
    lab: FaultLab, postgres: EmbeddedPostgres | None, postgres_dsn: str
) -> None:
    if postgres is None:
        pytest.skip("needs the embedded server (DATABASE_URL points at one it cannot stop)")
    lab.postgres, lab.postgres_dsn = postgres, postgres_dsn
    result = postgres_outage(lab, 200, outage_s=5)
    assert result.passed, table(result)
    assert result.report.dead_lettered == 0


def test_kill_9_of_a_db_node_leaves_one_row_per_command(lab: FaultLab, postgres_dsn: str) -> None:
    lab.postgres_dsn = postgres_dsn
    result = kill_9_db_rows(lab, 2000)
    assert result.passed, table(result)
    assert "2,000 rows for 2,000 commands (2,000 distinct)" in result.note
