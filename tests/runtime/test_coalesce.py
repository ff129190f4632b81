"""State records that a later one of the same key makes redundant are not written.

At least once, those held until a flush (each commit), or within a list published when
states are not held (a replaced record's acknowledgement waits on the record sent);
exactly once, within a transaction's released outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from onex_actors.app import HostConfig
from onex_actors.app._metrics import HostCollector, host_registry
from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import (
    BusError,
    KeyState,
    PartitionOffsets,
    cmd_topic,
    home_partition,
    new_command,
    state_topic,
)
from onex_actors.runtime import BatchAck, OutboundRecord, Outbox, Record
from onex_actors.runtime._coalesce import superseded
from onex_actors.runtime._item import WorkItem
from onex_actors.runtime._state_cache import MAX_HELD_BYTES
from onex_actors.runtime._ticket import Ticket
from onex_actors.testing import open_test_host

from .test_keyed_store import tally_work
from .test_pure_nodes import tree

records_in_any_order = st.lists(
    st.builds(
        OutboundRecord,
        topic=st.sampled_from(["changelog", "evt"]),
        value=st.binary(max_size=2),
        key=st.sampled_from([b"a", b"b", None]),
        partition=st.sampled_from([0, 1, None]),
        compacted=st.booleans(),
    ),
    max_size=30,
)


@settings(max_examples=300)
@given(records_in_any_order)
def test_only_compacted_records_with_a_later_one_of_their_slot_are_dropped(
    records: list[OutboundRecord],
) -> None:
    dropped = superseded(records)
    for index, record in enumerate(records):
        later = [
            j
            for j in range(index + 1, len(records))
            if records[j].compacted
            and (records[j].topic, records[j].partition, records[j].key)
            == (record.topic, record.partition, record.key)
        ]
        if record.compacted and later:
            assert dropped[index] == later[-1]  # the newest of its slot, itself kept
            assert later[-1] not in dropped
        else:
            assert index not in dropped


class _RefusingBus(InProcessBus):
    """Fails every record of one topic (as a broker refusing it), appends the rest."""

    def __init__(self, refused: str) -> None:
        super().__init__(partitions=2)
        self.refused = refused

    async def publish(
        self, records: Sequence[OutboundRecord], on_ack: BatchAck | None = None
    ) -> None:
        kept = [r for r in records if r.topic != self.refused]
        failed = [
            (index, BusError("refused", reason="produce_failed"))
            for index, record in enumerate(records)
            if record.topic == self.refused
        ]
        await super().publish(kept)
        if on_ack is not None:
            on_ack(failed)


def _state(value: bytes, key: bytes = b"a") -> OutboundRecord:
    return OutboundRecord("changelog", value, key, partition=0, compacted=True)


async def _publish_three(
    outbox: Outbox, offsets: PartitionOffsets, replaced: list[tuple[int, int]] | None = None
) -> list[Ticket]:
    """Publish three lists, each an answer and a state of key ``a``, as three slices."""
    tickets = []
    for n in range(3):
        offsets.start(n)
        ticket = Ticket(marks=[(offsets, n)])

        async def fallback(index: int, _error: BaseException, n: int = n) -> None:
            assert replaced is not None
            replaced.append((n, index))

        records = [OutboundRecord("evt", b"%d" % n), _state(b"%d" % n)]
        await outbox.publish_many(records, ticket.expect_many(2), fallback)
        ticket.seal()
        tickets.append(ticket)
    return tickets


async def test_held_states_go_out_at_the_flush_one_per_key_each_ack_waiting_for_it() -> None:
    bus = InProcessBus(partitions=2)
    outbox = Outbox(bus, max_envelope_bytes=1 << 20, holds_states=True)
    tickets = await _publish_three(outbox, PartitionOffsets())

    assert len(bus.records("evt")) == 3  # the answers go at once
    assert bus.records("changelog") == []
    assert not any(ticket.settled for ticket in tickets)  # each waits for its state

    await outbox.flush_states()

    assert [r.value for r in bus.records("changelog")] == [b"2"]
    assert all(ticket.settled for ticket in tickets)
    assert outbox.coalesced["changelog"] == 2
    await outbox.flush_states()  # nothing held: nothing sent again
    assert len(bus.records("changelog")) == 1


async def test_without_holding_a_lists_states_go_with_it() -> None:
    bus = InProcessBus(partitions=2)
    outbox = Outbox(bus, max_envelope_bytes=1 << 20)
    tickets = await _publish_three(outbox, PartitionOffsets())

    assert [r.value for r in bus.records("changelog")] == [b"0", b"1", b"2"]
    assert all(ticket.settled for ticket in tickets)
    assert outbox.coalesced["changelog"] == 0


async def test_a_held_state_that_fails_runs_the_fallback_of_each_state_it_replaced() -> None:
    outbox = Outbox(_RefusingBus("changelog"), max_envelope_bytes=1 << 20, holds_states=True)
    replaced: list[tuple[int, int]] = []
    tickets = await _publish_three(outbox, PartitionOffsets(), replaced)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.run)  # the retry, then the fallbacks
        await outbox.flush_states()
        nursery.cancel_scope.cancel()

    assert sorted(replaced) == [(0, 1), (1, 1), (2, 1)]  # each list's state record
    assert all(ticket.settled for ticket in tickets)  # answered by their fallbacks
    assert not outbox.lost.is_set()


async def test_a_held_state_of_a_partition_no_longer_served_is_dropped_not_sent() -> None:
    bus = InProcessBus(partitions=2)
    outbox = Outbox(bus, max_envelope_bytes=1 << 20, holds_states=True)
    served = {0, 1}
    outbox.states.served["changelog"] = served
    offsets = PartitionOffsets()
    offsets.start(0)
    ticket = Ticket(marks=[(offsets, 0)])  # one ticket for a slice of both partitions
    gone = OutboundRecord("changelog", b"old", b"a", partition=0, compacted=True)
    kept = OutboundRecord("changelog", b"new", b"b", partition=1, compacted=True)
    await outbox.publish_many([gone, kept], ticket.expect_many(2))
    served.discard(0)  # revoked, as the node's store forgets it

    await outbox.flush_states()

    assert [r.value for r in bus.records("changelog")] == [b"new"]
    assert outbox.states.voided == 1


async def test_more_than_the_bytes_held_sends_at_once() -> None:
    bus = InProcessBus(partitions=2)
    outbox = Outbox(bus, max_envelope_bytes=1 << 25, holds_states=True)
    big = b"x" * (MAX_HELD_BYTES // 2 + 1)
    await outbox.publish_many([_state(big, b"a")], [None])
    assert bus.records("changelog") == []
    await outbox.publish_many([_state(big, b"b")], [None])
    assert len(bus.records("changelog")) == 2
    assert len(outbox.states) == 0


async def test_a_slice_writes_each_keys_newest_state_once() -> None:
    handler, bus, work = tally_work()
    homes = {key: home_partition(f"global/{key}".encode(), 4) for key in "ab"}
    handler.store.owned.update(homes.values())
    offsets = {key: PartitionOffsets() for key in "ab"}
    keys = "aabaab"
    seen = dict.fromkeys("ab", 0)
    items = []
    for key in keys:
        offset = seen[key]
        seen[key] += 1
        record = Record(cmd_topic("tally"), homes[key], offset, f"global/{key}".encode(), b"{}")
        ticket = Ticket(marks=[(offsets[key], offset)])
        items.append(WorkItem(new_command("tally", {"k": key}), ticket, record))

    await work._handle_pure(items)

    states = {key: handler.store.get(homes[key], f"global/{key}") for key in "ab"}
    assert {key: s.value for key, s in states.items() if s is not None} == {
        "a": {"n": 4},
        "b": {"n": 2},
    }
    written = sorted((r.key, r.value) for r in bus.records(state_topic("tally")))
    newest = [(f"global/{key}".encode(), s.to_bytes()) for key, s in states.items() if s]
    assert written == sorted(newest)
    assert work.outbox.coalesced[state_topic("tally")] == 4
    assert all(item.answered for item in items)
    assert len(bus.records("onex.app.local.global.evt.node.tally.v1")) == len(keys)


async def test_a_transaction_carries_each_keys_newest_state_once() -> None:
    outbox = Outbox(InProcessBus(partitions=2), max_envelope_bytes=1 << 20, holds_outputs=True)
    offsets = PartitionOffsets()

    def state(key: bytes, value: bytes) -> OutboundRecord:
        return OutboundRecord("changelog", value, key, partition=0, compacted=True)

    sent = [
        state(b"a", b"1"),
        OutboundRecord("evt", b"answer-1"),
        state(b"b", b"1"),
        state(b"a", b"2"),
        OutboundRecord("evt", b"answer-2"),
        state(b"a", b"3"),
    ]
    for offset, record in enumerate(sent):
        offsets.start(offset)
        ticket = Ticket(marks=[(offsets, offset)])
        await outbox.publish_many([record], [ticket.expect()])
        offsets.done(offset)

    released = outbox.release()

    assert released == [sent[1], sent[2], sent[4], sent[5]]
    assert outbox.coalesced["changelog"] == 2


async def test_a_host_at_least_once_writes_a_keys_states_of_one_commit_interval_once() -> None:
    bus = InProcessBus(partitions=4)
    config = HostConfig(commit_interval_s=3600)  # no commit but the last, at the stop
    async with open_test_host(
        "runtime-dev-state", contracts=tree(), bus=bus, config=config
    ) as host:
        for amount in (5, 7, 3):
            answer = await host.request("order-totals", {"customer": "c1", "amount": amount})
            assert answer.status == "ok"
        assert bus.records(state_topic("order-totals")) == []  # held, the answers sent
        outbox = host.host.outbox
    written = bus.records(state_topic("order-totals"))
    assert len(written) == 1
    assert KeyState.from_bytes(written[0].value or b"").value == {"total": 15, "orders": 3}
    assert outbox.coalesced[state_topic("order-totals")] == 2


async def test_records_left_out_and_restores_tried_again_show_in_the_metrics() -> None:
    bus = InProcessBus(partitions=4)
    async with open_test_host("runtime-dev-state", contracts=tree(), bus=bus) as host:
        for amount in (5, 7, 3):
            await host.request("order-totals", {"customer": "c1", "amount": amount})
        counted = host.host.outbox.coalesced[state_topic("order-totals")]
        host.host.outbox.coalesced[state_topic("order-totals")] += 2  # as flushes count them
        restorer = host.host.restorer
        assert restorer is not None
        restorer.retries["order-totals"] += 1  # as a restore the brokers did not answer
        text = generate_latest(host_registry(HostCollector(host.host))).decode()
    assert f'onex_state_changelog_coalesced_total{{node="order-totals"}} {counted + 2:.1f}' in text
    assert 'onex_state_changelog_coalesced_total{node="account"} 0.0' in text
    assert 'onex_state_restore_retries_total{node="order-totals"} 1.0' in text
    assert 'onex_state_restore_retries_total{node="account"} 0.0' in text
