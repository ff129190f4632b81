"""State records that a later one of the same key makes redundant are not written.

At least once, within a slice's outputs (the dropped record's acknowledgement waits on the
record kept); exactly once, within a transaction's released outputs.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from onex_actors.app._metrics import HostCollector, host_registry
from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import PartitionOffsets, cmd_topic, home_partition, new_command, state_topic
from onex_actors.runtime import OutboundRecord, Outbox, Record
from onex_actors.runtime._coalesce import superseded
from onex_actors.runtime._item import WorkItem
from onex_actors.runtime._ticket import Ticket
from onex_actors.runtime._work import _Outputs
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


def test_a_dropped_records_owner_and_ack_go_to_the_record_kept() -> None:
    offsets = PartitionOffsets()
    offsets.start(0)
    items = [
        WorkItem(new_command("tally", {"k": "a"}), Ticket(marks=[(offsets, n)])) for n in range(3)
    ]
    outputs = _Outputs()
    for n, item in enumerate(items):
        answer = OutboundRecord("evt", b"%d" % n)
        state = OutboundRecord("changelog", b"%d" % n, b"a", partition=0, compacted=True)
        outputs.add(item, [answer, state])
    for item in items:
        item.ticket.seal()

    assert outputs.coalesce() == ["changelog", "changelog"]
    assert [r.value for r in outputs.records] == [b"0", b"1", b"2", b"2"]
    assert outputs.owners[-1] == (items[2], items[0], items[1])
    for on_ack in outputs.acks[:-1]:  # the answers
        assert on_ack is not None
        on_ack(None)
    assert not any(item.ticket.settled for item in items)  # each waits for its state
    on_ack = outputs.acks[-1]
    assert on_ack is not None
    on_ack(None)
    assert all(item.ticket.settled for item in items)


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


async def test_records_left_out_and_restores_tried_again_show_in_the_metrics() -> None:
    bus = InProcessBus(partitions=4)
    async with open_test_host("runtime-dev-state", contracts=tree(), bus=bus) as host:
        for amount in (5, 7, 3):
            await host.request("order-totals", {"customer": "c1", "amount": amount})
        host.host.outbox.coalesced[state_topic("order-totals")] += 2  # as slices count them
        restorer = host.host.restorer
        assert restorer is not None
        restorer.retries["order-totals"] += 1  # as a restore the brokers did not answer
        text = generate_latest(host_registry(HostCollector(host.host))).decode()
    assert 'onex_state_changelog_coalesced_total{node="order-totals"} 2.0' in text
    assert 'onex_state_changelog_coalesced_total{node="account"} 0.0' in text
    assert 'onex_state_restore_retries_total{node="order-totals"} 1.0' in text
    assert 'onex_state_restore_retries_total{node="account"} 0.0' in text
