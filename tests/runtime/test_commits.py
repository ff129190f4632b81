"""The commit rule, kept once in the runtime for every bus adapter."""

from __future__ import annotations

from collections.abc import Mapping

from onex_actors.core import BusError, PartitionPhase
from onex_actors.runtime import CommitTracker, Record, TopicPartition

TP = TopicPartition("onex.app.local.global.cmd.node.echo-node.v1", 0)
OTHER = TopicPartition("onex.app.local.global.cmd.node.echo-node.v1", 1)


def records(tp: TopicPartition, offsets: range) -> list[Record]:
    return [Record(tp.topic, tp.partition, offset, None, b"{}") for offset in offsets]


class FakeConsumer:
    """Takes commits, refusing the first ``refusals`` of them."""

    def __init__(self, refusals: int = 0) -> None:
        self.refusals = refusals
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self.refusals:
            self.refusals -= 1
            raise BusError("the group rebalanced")
        self.commits.append(dict(offsets))


def test_due_never_passes_the_lowest_unfinished_offset() -> None:
    tracker = CommitTracker()
    marks = tracker.track(records(TP, range(5)))
    tracker.settle([marks[0], marks[1], marks[3]])
    assert tracker.due() == {TP: 2}
    tracker.committed({TP: 2})
    assert tracker.due() == {}
    tracker.settle([marks[2]])
    assert tracker.due() == {TP: 4}
    tracker.settle([marks[4]])
    assert tracker.due() == {TP: 5}


def test_partitions_are_independent() -> None:
    tracker = CommitTracker()
    first = tracker.track(records(TP, range(3)))
    second = tracker.track(records(OTHER, range(10, 12)))
    tracker.settle(second)
    assert tracker.due() == {TP: 0, OTHER: 12}
    tracker.settle(first[:1])
    assert tracker.due() == {TP: 1, OTHER: 12}


def test_a_partition_read_again_from_its_commit_starts_afresh() -> None:
    tracker = CommitTracker()
    old = tracker.track(records(TP, range(5)))
    tracker.settle(old[:2])
    tracker.committed({TP: 2})
    # a rebalance: the partition comes back from its last commit, offset 2
    new = tracker.track(records(TP, range(2, 4)))
    assert tracker.in_flight(TP) == 2
    tracker.settle(old[2:])  # work of before the rebalance settles on the old tracker only
    assert tracker.due() == {}
    tracker.settle(new)
    assert tracker.due() == {TP: 4}


async def test_a_refused_commit_is_tried_again_at_the_next_commit() -> None:
    tracker = CommitTracker()
    tracker.settle(tracker.track(records(TP, range(3))))
    consumer = FakeConsumer(refusals=1)
    assert not await tracker.commit(consumer)
    assert tracker.failed_commits == 1
    assert tracker.due() == {TP: 3}
    assert await tracker.commit(consumer)
    assert consumer.commits == [{TP: 3}]
    assert await tracker.commit(consumer)  # nothing new: no second commit
    assert consumer.commits == [{TP: 3}]


def test_done_offsets_of_revoked_partitions_are_what_is_done_and_not_yet_committed() -> None:
    tracker = CommitTracker()
    marks = tracker.track(records(TP, range(4)))
    other = tracker.track(records(OTHER, range(10, 12)))
    tracker.settle([marks[0], marks[1], marks[3]])
    tracker.settle(other)
    tracker.committed({OTHER: 12})
    unknown = TopicPartition(TP.topic, 7)
    assert tracker.revoking([TP, OTHER, unknown]) == {TP: 2}


def test_a_partition_unit_goes_through_its_lifecycle_with_the_consumer_events() -> None:
    tracker = CommitTracker(commit_before_revoke=True)
    assert tracker.phase(TP) is None
    tracker.assigned([TP])
    assert tracker.phase(TP) is PartitionPhase.SERVING
    marks = tracker.track(records(TP, range(3)))
    tracker.settle(marks[:2])
    assert tracker.revoking([TP]) == {TP: 2}
    assert tracker.phase(TP) is PartitionPhase.REVOKING
    tracker.revoked([TP])
    assert tracker.phase(TP) is PartitionPhase.REVOKED
    tracker.settle(marks[2:])  # finished after it went: nothing more is due here
    assert tracker.due() == {}
    assert tracker.in_flight(TP) == 0


def test_revoking_commits_nothing_where_the_strategy_commits_only_in_its_rounds() -> None:
    tracker = CommitTracker(commit_before_revoke=False)
    tracker.settle(tracker.track(records(TP, range(3))))
    assert tracker.revoking([TP]) == {}
    assert tracker.phase(TP) is PartitionPhase.REVOKING
    assert tracker.due() == {TP: 3}  # a transaction of this generation may still carry it


def test_records_of_a_revoked_partition_are_void_until_it_is_assigned_again() -> None:
    tracker = CommitTracker()
    tracker.assigned([TP])
    tracker.settle(tracker.track(records(TP, range(3))))
    tracker.revoked([TP])
    # fetched before the revocation, handed on after it: never committed here
    late = tracker.track(records(TP, range(3, 5)))
    tracker.settle(late)
    assert all(offsets.retired for offsets, _ in late)
    assert tracker.due() == {}
    tracker.assigned([TP])
    tracker.settle(tracker.track(records(TP, range(3, 5))))
    assert tracker.due() == {TP: 5}
