from __future__ import annotations

from onex_actors.core import ProgressWatch, Stall


def test_a_partition_with_waiting_records_and_no_progress_stalls() -> None:
    watch: ProgressWatch[str] = ProgressWatch(stall_after_s=10)
    watch.observe("p0", 5, 9, paused=False, now=0)
    watch.observe("p0", 5, 9, paused=False, now=9.9)
    assert watch.stalled(now=9.9) == []
    watch.observe("p0", 5, 12, paused=False, now=10)
    assert watch.stalled(now=10) == [Stall("p0", 5, 12, 0)]


def test_moving_idle_or_paused_partitions_do_not_stall() -> None:
    watch: ProgressWatch[str] = ProgressWatch(stall_after_s=10)
    for t in range(0, 100, 5):
        watch.observe("moving", t, 1000, paused=False, now=t)
        watch.observe("idle", 7, 7, paused=False, now=t)
        watch.observe("paused", 3, 50, paused=True, now=t)
    assert watch.stalled(now=100) == []


def test_progress_restarts_the_clock_and_revoked_partitions_are_forgotten() -> None:
    watch: ProgressWatch[str] = ProgressWatch(stall_after_s=10)
    watch.observe("p0", 1, 5, paused=False, now=0)
    watch.observe("p0", 2, 5, paused=False, now=8)
    watch.observe("p0", 2, 5, paused=False, now=17)
    assert watch.stalled(now=17) == []
    assert watch.stalled(now=18) == [Stall("p0", 2, 5, 8)]
    watch.forget(keep=set())
    assert watch.stalled(now=50) == []
