"""``KeyedStore``: writes stay pending until their input offset is committed; a read-again
puts every key back at its last committed state without reading the changelog again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.bridges.lmdb import LmdbStates
from onex_actors.core import (
    KeyState,
    OnexEnvelope,
    OrchestratorContract,
    PartitionOffsets,
    ReducerContract,
    RuntimeHostContract,
    build_routing_table,
    cmd_topic,
    evt_topic,
    home_partition,
    new_command,
    parse_contract,
    state_topic,
)
from onex_actors.runtime import (
    KeyedStore,
    OrchestratorHandler,
    Outbox,
    PureOutcome,
    Record,
    ReducerHandler,
    RuntimeLog,
    StateRestorer,
    StateStore,
    TopicPartition,
)
from onex_actors.runtime._item import WorkItem
from onex_actors.runtime._ticket import Ticket
from onex_actors.runtime._work import NodeWork

Step = tuple[str, str, int]


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["put", "put", "put", "commit", "abort"]),
            st.sampled_from("xyz"),
            st.integers(0, 5),
        ),
        max_size=80,
    )
)
def test_reads_see_the_newest_write_and_an_abort_returns_to_the_last_commit(
    steps: list[Step],
) -> None:
    store = KeyedStore()
    committed: dict[str, int] = {}  # the model: the value each key committed
    pending: list[tuple[int, str, int]] = []  # (input offset, key, value), in write order
    floor = next_offset = 0
    for kind, key, number in steps:
        if kind == "put":
            store.put(0, key, KeyState({"n": number}), next_offset)
            pending.append((next_offset, key, number))
            next_offset += 1
        elif kind == "commit":  # everything read up to some point is done and committed
            floor = min(next_offset, floor + number)
            store.committed(0, floor)
            committed.update({k: value for offset, k, value in pending if offset < floor})
            pending = [p for p in pending if p[0] >= floor]
        else:  # a transaction aborted: read again from the last commit
            store.discard(0)
            pending = []
            next_offset = floor
        for k in "xyz":
            newest = [value for _, kk, value in pending if kk == k]
            expected = newest[-1] if newest else committed.get(k)
            state = store.get(0, k)
            assert (state.value["n"] if state is not None else None) == expected


def test_a_restore_takes_each_keys_newest_record_and_tombstones_delete() -> None:
    store = KeyedStore()

    def record(offset: int, key: bytes | None, value: bytes | None) -> Record:
        return Record("state", 2, offset, key, value)

    unreadable = store.load(
        2,
        [
            record(0, b"a", KeyState({"n": 1}).to_bytes()),
            record(1, b"b", KeyState({"n": 2}).to_bytes()),
            record(2, b"a", KeyState({"n": 3}).to_bytes()),
            record(3, b"b", None),
            record(4, b"c", b"not json"),
            record(5, None, KeyState({"n": 9}).to_bytes()),
        ],
    )
    assert unreadable == 2
    assert store.get(2, "a") == KeyState({"n": 3})
    assert store.get(2, "b") is None
    assert store.get(2, "c") is None
    assert store.keys_in(2) == 1
    store.drop(2)
    assert store.get(2, "a") is None


def tally() -> ReducerContract:
    contract = parse_contract(
        {
            "kind": "reducer",
            "node_id": "tally",
            "version": "0.1.0",
            "key": "input.k",
            "fold": {"assign": {"n": "state.n + 1"}},
            "state": {"initial": {"n": 0}},
        },
        source="<test>",
    )
    assert isinstance(contract, ReducerContract)
    return contract


def tally_handler(contract: ReducerContract, states: StateStore | None = None) -> ReducerHandler:
    return ReducerHandler(
        contract,
        cmd_topic=cmd_topic("tally"),
        state_topic=state_topic("tally"),
        intent_topics={},
        partitions=4,
        states=states,
    )


def tally_work() -> tuple[ReducerHandler, InProcessBus, NodeWork]:
    """A tally reducer's handler and its ``NodeWork`` on an in-process bus of 4 partitions."""
    contract = tally()
    runtime = RuntimeHostContract.model_validate(
        {
            "kind": "runtime_host",
            "node_id": "runtime-t",
            "version": "0.1.0",
            "subscriptions": {"cmd_topics": ["onex.app.local.global.cmd.node.#"]},
            "handlers": {"families": ["local"]},
            "host_selector": {"node_ids": ["tally"]},
        }
    )
    table = build_routing_table(runtime, {"tally": contract})
    handler = tally_handler(contract)
    bus = InProcessBus(partitions=4)
    outbox = Outbox(bus, max_envelope_bytes=1 << 20)
    work = NodeWork(table.hosted["tally"], handler, outbox, RuntimeLog(outbox, "runtime-t"))
    return handler, bus, work


async def test_a_partition_kept_through_a_rebalance_keeps_its_state_and_is_decided() -> None:
    # a member told "assigned" for a partition it never lost (no revocation came first)
    # must go on deciding its records: answering them "not here" would let their offsets
    # be committed with nothing folded or answered
    contract = tally()
    handler = tally_handler(contract)
    bus = InProcessBus(partitions=4)
    restorer = StateRestorer(bus, {"tally": handler})
    home = home_partition(b"global/a", 4)
    tp = TopicPartition(cmd_topic("tally"), home)
    await restorer.restore(handler, tp)

    def record(offset: int) -> tuple[OnexEnvelope, Record]:
        command = new_command("tally", {"k": "a"})
        return command, Record(tp.topic, home, offset, b"global/a", b"{}")

    (first,) = handler.decide_batch([record(0)])
    restorer.assigned([tp])  # the same partition, kept
    (second,) = handler.decide_batch([record(1)])
    restorer.revoked([tp])
    (third,) = handler.decide_batch([record(2)])
    assert isinstance(first, PureOutcome)
    assert isinstance(second, PureOutcome)
    assert isinstance(third, PureOutcome)
    assert first.payload is not None
    assert second.payload is not None
    assert (first.payload["state"], second.payload["state"]) == ({"n": 1}, {"n": 2})
    assert third.payload is None  # revoked: another member answers it
    assert third.commands == ()


async def test_records_read_again_elsewhere_are_not_decided() -> None:
    # after an abort their outputs (changelog record included) are void: a decision
    # would leave a pending write whose changelog record never existed
    handler, bus, work = tally_work()
    home = home_partition(b"global/a", 4)
    handler.store.owned.add(home)
    voided, live = PartitionOffsets(), PartitionOffsets()
    voided.start(0)
    voided.retired = True
    live.start(1)

    def item(offsets: PartitionOffsets, offset: int) -> WorkItem:
        record = Record(cmd_topic("tally"), home, offset, b"global/a", b"{}")
        return WorkItem(new_command("tally", {"k": "a"}), Ticket(marks=[(offsets, offset)]), record)

    await work._handle_pure([item(voided, 0)])
    assert handler.store.get(home, "global/a") is None
    assert bus.records(state_topic("tally")) == []
    await work._handle_pure([item(live, 1)])
    state = handler.store.get(home, "global/a")
    assert state is not None
    assert state.value == {"n": 1}


def test_a_slice_that_fails_part_way_withdraws_its_writes_and_only_its_own() -> None:
    store = KeyedStore()
    store.put(0, "a", KeyState({"n": 1}), 0)  # an earlier slice's, still pending
    store.committed(0, 1)
    store.put(0, "b", KeyState({"n": 1}), 1)

    def a_slice_failing_after_three_writes() -> None:
        with store.a_slice():
            store.put(0, "a", KeyState({"n": 2}), 2)
            store.put(0, "b", KeyState({"n": 2}), 3)
            store.put(0, "c", KeyState({"n": 1}), 4)
            raise RuntimeError("a bug in a decision")

    with pytest.raises(RuntimeError, match="a bug in a decision"):
        a_slice_failing_after_three_writes()
    assert [store.get(0, key) for key in "abc"] == [KeyState({"n": 1}), KeyState({"n": 1}), None]
    assert store.pending(0) == 1  # b's write of the earlier slice
    with store.a_slice():
        store.put(0, "c", KeyState({"n": 1}), 4)
    assert store.get(0, "c") == KeyState({"n": 1})


async def test_items_decided_again_after_a_failed_slice_are_folded_not_duplicates() -> None:
    # a decision that raises (a bug, not a refused command) fails the whole slice and
    # the actor handles its items again: the first item's state, decided before the
    # failure, must not be read back as "already holds it" (no changelog record would
    # ever be written for it)
    handler, bus, work = tally_work()
    homes = {key: home_partition(f"global/{key}".encode(), 4) for key in "ab"}
    handler.store.owned.update(homes.values())
    offsets = PartitionOffsets()
    offsets.start(0)
    commands = {key: new_command("tally", {"k": key}) for key in "ab"}

    def item(key: str) -> WorkItem:
        record = Record(cmd_topic("tally"), homes[key], 0, f"global/{key}".encode(), b"{}")
        return WorkItem(commands[key], Ticket(marks=[(offsets, 0)]), record)

    handler.reducer.decide = fail_on_call(handler.reducer.decide, 2)  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="a bug in a decision"):
        await work._handle_pure([item("a"), item("b")])
    assert bus.records(state_topic("tally")) == []
    await work._handle_pure([item("a"), item("b")])
    written = {r.key: r.value for r in bus.records(state_topic("tally"))}
    assert set(written) == {b"global/a", b"global/b"}
    for key in "ab":
        state = handler.store.get(homes[key], f"global/{key}")
        assert state is not None
        assert state.value == {"n": 1}
        assert written[f"global/{key}".encode()] == state.to_bytes()


def fail_on_call(decide: Callable[..., Any], failing: int) -> Callable[..., Any]:
    """Wrap ``decide`` to raise (a bug) on its ``failing``-th call."""
    calls = 0

    def decide_or_fail(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == failing:
            raise RuntimeError("a bug in a decision")
        return decide(*args, **kwargs)

    return decide_or_fail


def test_a_reducers_counters_count_a_slice_decided_again_once() -> None:
    handler = tally_handler(tally())
    handler.store.owned.update(range(4))
    home = home_partition(b"global/a", 4)
    elsewhere = (home + 1) % 4
    sent_on = Record(cmd_topic("tally"), elsewhere, 0, b"a", b"{}")
    folded = Record(cmd_topic("tally"), home, 0, b"global/a", b"{}")
    inputs = [
        (new_command("tally", {"k": "a"}), sent_on),
        (new_command("tally", {"k": "a"}), folded),
    ]
    decide = handler.reducer.decide
    handler.reducer.decide = fail_on_call(decide, 1)  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="a bug in a decision"):
        handler.decide_batch(inputs)
    assert handler.rekeyed == 0
    handler.reducer.decide = decide  # type: ignore[method-assign]
    handler.decide_batch(inputs)
    assert handler.rekeyed == 1


def test_an_orchestrators_counters_count_a_slice_decided_again_once() -> None:
    contract = parse_contract(SIGNUP_FLOW, source="signup-flow.yaml")
    assert isinstance(contract, OrchestratorContract)
    handler = OrchestratorHandler(
        contract,
        cmd_topic=cmd_topic("signup-flow"),
        evt_topic=evt_topic("signup-flow"),
        state_topic=state_topic("signup-flow"),
        partitions=4,
    )
    handler.store.owned.update(range(4))
    starts = [new_command("signup-flow", {"user": user}) for user in ("ann", "bob")]
    inputs = [
        (
            start,
            Record(
                cmd_topic("signup-flow"),
                home_partition(f"global/{start.correlation_id}".encode(), 4),
                offset,
                None,
                b"{}",
            ),
        )
        for offset, start in enumerate(starts)
    ]
    decide = handler.engine.decide
    handler.engine.decide = fail_on_call(decide, 2)  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="a bug in a decision"):
        handler.decide_batch(inputs)
    assert handler.counts == {}
    handler.engine.decide = decide  # type: ignore[method-assign]
    outcomes = handler.decide_batch(inputs)
    assert all(isinstance(outcome, PureOutcome) for outcome in outcomes)
    assert handler.counts == {"started": 2}


SIGNUP_FLOW = {
    "kind": "orchestrator",
    "node_id": "signup-flow",
    "version": "0.1.0",
    "workflow": {
        "steps": [{"name": "hello", "node_id": "echo-node", "payload": {"text": "input.user"}}],
        "output": {"greeting": "steps.hello.output.text"},
    },
}


async def test_a_partition_past_the_changelogs_is_served_at_once_and_sends_its_records_on(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    # the command topic grew from 4 to 8 partitions while the host ran: partition 6 has no
    # changelog partition to restore, and its keys' states live among the first 4
    contract = tally()
    handler = tally_handler(contract, LmdbStates(tmp_path, map_size=1 << 26))
    bus = InProcessBus(partitions=4)  # a read of changelog partition 6 would fail here
    restorer = StateRestorer(bus, {"tally": handler})
    grown = TopicPartition(cmd_topic("tally"), 6)
    await restorer.restore(handler, grown)
    await restorer.restore(handler, TopicPartition(cmd_topic("tally"), 7))
    assert {6, 7} <= handler.store.owned
    assert restorer.restores == []  # nothing read
    assert await restorer.checkpoint() == 0  # no changelog end asked for 6 or 7 at a stop
    command = new_command("tally", {"k": "a"})
    (outcome,) = handler.decide_batch([(command, Record(grown.topic, 6, 0, b"global/a", b"{}"))])
    assert isinstance(outcome, PureOutcome)
    assert outcome.payload is None  # answered where its key's state lives
    ((sent, topic, partition),) = outcome.commands
    assert (topic, partition) == (cmd_topic("tally"), home_partition(b"global/a", 4))
    assert sent.envelope_id == command.envelope_id
    said = [
        r.getMessage() for r in caplog.records if "has no partition in its state" in r.getMessage()
    ]
    assert len(said) == 1  # once a node
    assert said[0].startswith(f"tally: partition 6 of {cmd_topic('tally')} has no partition")
