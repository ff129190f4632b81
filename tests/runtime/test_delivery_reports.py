"""Delivery reports counted where the client makes them, handed to trio once per list."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import trio
import trio.testing

from onex_actors.bridges._acks import AckRuns
from onex_actors.core import BusError


async def test_a_list_is_settled_once_with_every_failure_whichever_threads_report() -> None:
    runs = AckRuns()
    runs.bind()
    settled: list[Sequence[tuple[int, BaseException]]] = []
    all_in = trio.Event()

    def on_ack(failures: Sequence[tuple[int, BaseException]]) -> None:
        settled.append(list(failures))
        all_in.set()

    count = 20_000
    failing = set(range(0, count, 997))
    settling = runs.settling(on_ack, count)
    start = threading.Barrier(2)

    def report(indexes: range) -> None:
        start.wait()
        for index in indexes:
            if index in failing:
                settling.failed(index, BusError(f"record {index}", reason="produce_failed"))
            else:
                settling.ok()

    # two threads at once, as librdkafka's report thread beside a produce refused at once
    threads = [threading.Thread(target=report, args=(range(half, count, 2),)) for half in (0, 1)]
    for thread in threads:
        thread.start()
    await trio.to_thread.run_sync(lambda: [thread.join() for thread in threads])
    with trio.fail_after(5):
        await all_in.wait()

    assert len(settled) == 1
    assert sorted(index for index, _ in settled[0]) == sorted(failing)
    assert all(str(error) == f"record {index}" for index, error in settled[0])


async def test_lists_settled_together_wake_trio_once_and_each_gets_its_own_answer() -> None:
    runs = AckRuns()
    runs.bind()
    answers: list[tuple[str, int]] = []
    first = runs.settling(lambda failures: answers.append(("first", len(failures))), 2)
    second = runs.settling(lambda failures: answers.append(("second", len(failures))), 1)

    def report() -> None:
        first.ok()
        second.failed(0, BusError("refused", reason="produce_failed"))
        first.ok()

    # joined without yielding: trio's loop cannot answer before the thread has reported
    # all three (a thread run by trio.to_thread raced the loop's delivery of the second)
    thread = threading.Thread(target=report)
    thread.start()
    thread.join()
    assert not answers  # counted in the reporting thread, answered on trio
    await trio.testing.wait_all_tasks_blocked()

    assert answers == [("second", 1), ("first", 0)]


async def test_a_list_not_yet_fully_reported_is_not_answered() -> None:
    runs = AckRuns()
    runs.bind()
    answers: list[int] = []
    settling = runs.settling(lambda failures: answers.append(len(failures)), 3)
    settling.ok()
    settling.ok()
    await trio.testing.wait_all_tasks_blocked()
    assert answers == []
    settling.ok()
    await trio.testing.wait_all_tasks_blocked()
    assert answers == [0]
