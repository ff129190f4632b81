"""A transactional outbox releases exactly the outputs whose input offsets a commit covers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import pytest

from onex_actors.app import HostConfig
from onex_actors.app._delivery_choice import check_delivery
from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import ConfigError
from onex_actors.runtime import (
    CommitTracker,
    OutboundRecord,
    Outbox,
    Record,
    Ticket,
    TopicPartition,
)


def _records(topic: str, offsets: Sequence[int]) -> list[Record]:
    return [Record(topic, 0, offset, None, b"{}") for offset in offsets]


def _ticket(tracker: CommitTracker, records: list[Record]) -> Ticket:
    marks = tracker.track(records)
    return Ticket(partial(CommitTracker.settle, marks), parts=len(records), marks=marks)


def _output(name: str) -> OutboundRecord:
    return OutboundRecord("onex.evt.out", name.encode())


async def _answer(outbox: Outbox, ticket: Ticket, name: str) -> None:
    await outbox.publish(_output(name), ticket)
    ticket.seal()


async def test_outputs_wait_until_every_earlier_input_is_done() -> None:
    tracker = CommitTracker()
    outbox = Outbox(InProcessBus(), max_envelope_bytes=1 << 20, holds_outputs=True)
    first = _ticket(tracker, _records("cmd", [0]))
    second = _ticket(tracker, _records("cmd", [1]))
    await _answer(outbox, second, "second")  # done out of order: offset 0 still running
    assert second.settled  # held outputs count as delivered at once
    assert list(tracker.due().values()) == [0]  # nothing may be committed past offset 0
    assert outbox.release() == []  # so nothing of offset 1 may be in this transaction
    assert outbox.held == 1
    await _answer(outbox, first, "first")
    due = tracker.due()
    released = outbox.release()
    assert list(due.values()) == [2]
    assert [r.value for r in released] == [b"second", b"first"]  # in the order held
    assert outbox.held == 0


async def test_log_events_go_with_any_transaction_and_read_again_outputs_never() -> None:
    tracker = CommitTracker()
    outbox = Outbox(InProcessBus(), max_envelope_bytes=1 << 20, holds_outputs=True)
    pending = _ticket(tracker, _records("cmd", [0]))
    await outbox.publish(_output("log"))  # no input record: a runtime log event
    await outbox.publish(_output("partial"), pending)  # its slice is not sealed yet
    assert [r.value for r in outbox.release()] == [b"log"]
    tracker.retire_all()  # a rebalance: offset 0 is read again from the last commit
    pending.seal()
    assert outbox.release() == []
    assert outbox.held == 0  # dropped: the re-read record answers anew
    assert tracker.due() == {}


async def test_a_partition_read_again_by_the_client_voids_what_was_in_flight() -> None:
    tracker = CommitTracker()
    outbox = Outbox(InProcessBus(), max_envelope_bytes=1 << 20, holds_outputs=True)
    first_read = _ticket(tracker, _records("cmd", [5, 6]))
    # the client reset its position to the last commit (a rebalance gave the partition
    # back) before the runtime heard of it: offsets 5 and 6 arrive again
    second_read = _ticket(tracker, _records("cmd", [5, 6]))
    await outbox.publish(_output("5 first"), first_read)
    await outbox.publish(_output("6 first"), first_read)
    first_read.seal()
    first_read.seal()
    await outbox.publish(_output("5 again"), second_read)
    await outbox.publish(_output("6 again"), second_read)
    second_read.seal()
    second_read.seal()
    assert list(tracker.due().values()) == [7]
    assert [r.value for r in outbox.release()] == [b"5 again", b"6 again"]  # once each


async def test_outputs_of_a_partition_that_moved_are_never_released() -> None:
    tracker = CommitTracker()
    outbox = Outbox(InProcessBus(), max_envelope_bytes=1 << 20, holds_outputs=True)
    kept, moved = _ticket(tracker, _records("a", [0])), _ticket(tracker, _records("b", [0]))
    await _answer(outbox, kept, "kept")
    await _answer(outbox, moved, "moved")
    # fetched during a rebalance; the new generation gave partition b to another member
    tracker.retire_except(frozenset({TopicPartition("a", 0)}))
    assert [r.value for r in outbox.release()] == [b"kept"]
    assert list(tracker.due()) == [TopicPartition("a", 0)]


def test_records_below_the_committed_offset_are_not_handled_again() -> None:
    tracker = CommitTracker()
    tracker.committed({TopicPartition("cmd", 0): 1700})
    # the client reset its position from an offset fetched before the last transaction
    again = _records("cmd", [1698, 1699, 1700, 1701])
    assert [r.offset for r in tracker.uncommitted(again)] == [1700, 1701]
    fresh = _records("cmd", [1702])
    assert tracker.uncommitted(fresh) is fresh  # the common case costs no copy
    # read again while the transaction committing up to 1750 is under way
    tracker.committing = {TopicPartition("cmd", 0): 1750}
    assert [r.offset for r in tracker.uncommitted(_records("cmd", [1749, 1750]))] == [1750]


def test_exactly_once_needs_a_kafka_bus_on_either_client() -> None:
    inprocess = HostConfig.model_validate({"delivery": {"mode": "exactly_once"}})
    with pytest.raises(ConfigError, match=r"bus\.kind is inprocess: use bus\.kind: kafka"):
        check_delivery(inprocess)
    confluent = HostConfig.model_validate(
        {
            "bus": {"kind": "kafka"},
            "kafka": {"client": "confluent"},
            "delivery": {"mode": "exactly_once"},
        }
    )
    check_delivery(confluent)
    check_delivery(HostConfig.model_validate({"bus": {"kind": "kafka"}, **_eos()}))


def _eos() -> dict[str, object]:
    return {"delivery": {"mode": "exactly_once"}}
