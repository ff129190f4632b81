"""The delivery checker: lost, duplicated and reordered records, and dead letters."""

from __future__ import annotations

import pytest

from onex_actors.core import ErrorInfo, dead_letter_of_record, new_command, result_of
from onex_actors.testing import (
    Outcome,
    SentRecord,
    check,
    longest_gap,
    outcome_of,
    render_reports,
    slowest_partition,
)


def sent(n: int, key: str = "k") -> list[SentRecord]:
    return [SentRecord(0, i, f"id-{i}", key, i) for i in range(n)]


def evt(cause: str, offset: int) -> Outcome:
    return Outcome("evt", (0, offset), cause)


def test_every_record_answered_once_in_order_passes() -> None:
    report = check(sent(3), [evt("id-0", 0), evt("id-1", 1), evt("id-2", 2)])
    assert report.passed
    assert (report.answered, report.duplicated, report.reordered) == (3, 0, 0)


def test_a_record_without_evt_or_dlq_is_lost() -> None:
    records = sent(3)
    report = check(records, [evt("id-0", 0), evt("id-2", 1)])
    assert not report.passed
    assert report.lost == (records[1],)


def test_answers_beyond_the_first_are_duplicates_and_do_not_count_as_reorders() -> None:
    outcomes = [evt("id-0", 0), evt("id-1", 1), evt("id-0", 2), evt("id-1", 3)]
    report = check(sent(2), outcomes)
    assert (report.duplicated, report.reordered) == (2, 0)


def test_a_first_answer_after_a_later_record_of_its_key_is_reordered() -> None:
    report = check(sent(3), [evt("id-1", 0), evt("id-0", 1), evt("id-2", 2)])
    assert report.reordered == 1
    other_key = [SentRecord(0, 9, "id-9", "other", 0)]
    assert (
        check([*sent(2), *other_key], [evt("id-1", 0), evt("id-9", 1), evt("id-0", 2)]).reordered
        == 1
    )


def test_dead_letters_account_for_records_by_cause_or_by_source_offset() -> None:
    records = [SentRecord(2, 7, None), SentRecord(2, 8, "id-8")]
    outcomes = [
        Outcome("dlq", (0, 0), None, source=(2, 7), error="not_json"),
        Outcome("dlq", (0, 1), "id-8", error="schema"),
    ]
    report = check(records, outcomes)
    assert report.passed
    assert report.dead_lettered == 2
    assert report.errors == {"not_json": 1, "schema": 1}


def test_outcomes_are_read_from_result_and_dead_letter_envelopes() -> None:
    command = new_command("echo-node", {})
    answer = outcome_of(result_of(command, {}), 1, 5)
    assert answer == Outcome("evt", (1, 5), str(command.envelope_id))
    letter = dead_letter_of_record(
        "runtime-x",
        b"\xff",
        ErrorInfo(type="not_json", message="no"),
        source={"topic": "t", "partition": 3, "offset": 4},
    )
    read = outcome_of(letter, 0, 0)
    assert read is not None
    assert (read.kind, read.source, read.error) == ("dlq", (3, 4), "not_json")
    assert outcome_of(new_command("echo-node", {}), 0, 0) is None


def test_the_table_has_one_row_per_scenario() -> None:
    report = check(sent(1), [evt("id-0", 0)])
    lines = render_reports([("kill -9", report, "a note")]).splitlines()
    assert lines[2] == "| kill -9 | 1 | 1 | 0 | 0 | 0 | 0 | a note |"


def test_the_longest_gap_counts_from_the_start_and_between_outcomes_only() -> None:
    stamps = [5.0, 100.4, 100.5, 101.0, 103.5, 103.6]
    assert longest_gap(stamps, since=100.0) == (2.5, 101.0)
    assert longest_gap([100.2, 104.2], since=100.0) == (pytest.approx(4.0), 100.2)
    assert longest_gap([1.0], since=100.0) == (0.0, 100.0)


def test_the_slowest_partition_is_the_one_whose_first_answer_after_the_kill_came_last() -> None:
    sent = [SentRecord(p, o, f"c{p}-{o}") for p in (0, 1) for o in range(3)]
    outcomes = [
        Outcome("evt", (0, i), cause)
        for i, cause in enumerate(["c0-0", "c1-0", "c0-1", "c0-2", "c1-1", "c1-2"])
    ]
    stamps = [99.0, 99.5, 100.2, 100.4, 107.0, 107.1]
    # killed at 100: partition 0 answers 0.2 s later, partition 1 (the dead host's) 7 s later
    assert slowest_partition(outcomes, stamps, sent, since=100.0) == 7.0
    assert slowest_partition(outcomes, stamps, sent, since=200.0) == 0.0
