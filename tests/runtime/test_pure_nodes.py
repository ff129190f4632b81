"""Compute and reducer nodes hosted on the in-process bus: answers, errors, intents, keys."""

from __future__ import annotations

import copy
import json
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client import generate_latest
from pydantic import JsonValue

from onex_actors.app import HostConfig, open_runtime_host
from onex_actors.app._metrics import HostCollector, host_registry
from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import (
    KEY_STATE_EXTRA_BYTES,
    PARTITION_KEY_HEADER,
    REPLY_TO_HEADER,
    BusError,
    ConfigError,
    ContractError,
    EnvelopeStatus,
    EnvelopeType,
    KeyState,
    NodeContract,
    OnexEnvelope,
    RuntimeHostContract,
    build_routing_table,
    cmd_topic,
    decode_envelope,
    dlq_topic,
    evt_topic,
    home_partition,
    new_command,
    parse_contract,
    state_topic,
)
from onex_actors.registry import FileRegistry, StaticRegistry
from onex_actors.runtime import (
    RECORD_OVERHEAD,
    BatchAck,
    HandlerHealth,
    OrchestratorHandler,
    OutboundRecord,
    Record,
    ReducerHandler,
    TopicPartition,
    _work,
)
from onex_actors.testing import HostHarness, open_test_host

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def scaled(payload: dict[str, JsonValue]) -> Mapping[str, JsonValue]:
    """A compute.function for the tests: raises on a missing ``n``, as user code may."""
    n = payload["n"]
    assert isinstance(n, int)
    return {"scaled": n * 10}


def function_node(node_id: str, function: str) -> dict[str, Any]:
    """A compute node's contract document calling ``function`` (a name of this module)."""
    target = function if ":" in function else f"tests.runtime.test_pure_nodes:{function}"
    return {
        "kind": "compute",
        "node_id": node_id,
        "version": "0.1.0",
        "compute": {"function": target},
    }


def tree(*extra: dict[str, Any]) -> StaticRegistry:
    """The shipped runtime-dev-state tree, and ``extra`` nodes it also hosts."""
    shipped = FileRegistry(CONTRACTS).tree
    nodes: dict[str, NodeContract] = dict(shipped.nodes)
    for document in extra:
        contract = parse_contract(document, source=f"<test:{document['node_id']}>")
        nodes[contract.node_id] = contract  # type: ignore[assignment]
    runtime = shipped.runtimes["runtime-dev-state"]
    selected = [*runtime.host_selector.node_ids, *(d["node_id"] for d in extra)]
    document = runtime.model_dump(mode="json")
    hosting = RuntimeHostContract.model_validate(
        {**document, "host_selector": {"node_ids": selected}}
    )
    return StaticRegistry([hosting], list(nodes.values()))


def reducer_of(host: HostHarness, node_id: str) -> ReducerHandler:
    handler = host.host.handlers[node_id]
    assert isinstance(handler, ReducerHandler)
    return handler


def orchestrator_of(host: HostHarness, node_id: str) -> OrchestratorHandler:
    handler = host.host.handlers[node_id]
    assert isinstance(handler, OrchestratorHandler)
    return handler


async def test_a_compute_node_answers_each_command_and_dead_letters_what_fails() -> None:
    scaling = function_node("scale", "scaled")
    async with open_test_host("runtime-dev-state", contracts=tree(scaling)) as host:
        quoted = await host.request("price-quote", {"net": 100, "quantity": 3})
        failed = await host.request("price-quote", {"net": "cheap", "quantity": 1})
        scaled_ok = await host.request("scale", {"n": 4})
        raised = await host.request("scale", {"m": 4})
        await host.collector.wait_until(
            lambda: host.dead_letters("price-quote") and host.dead_letters("scale")
        )
    assert quoted.payload == {"gross": 120.0, "line_total": 360.0}
    assert quoted.status is EnvelopeStatus.OK
    assert failed.error is not None
    assert failed.error.type == "expression_failed"
    assert "compute.output.gross: 'double(input.net) * 1.2' failed" in failed.error.message
    assert [d.error.type for d in host.dead_letters("price-quote") if d.error] == [
        "expression_failed"
    ]
    assert scaled_ok.payload == {"scaled": 40}
    assert raised.error is not None
    assert raised.error.type == "compute_failed"
    assert "compute.function raised KeyError: 'n'" in raised.error.message


def lingering(payload: dict[str, JsonValue]) -> Mapping[str, JsonValue]:
    """A compute.function that blocks, as one doing I/O would (for as long as it says)."""
    seconds = payload["block_s"]
    assert isinstance(seconds, float)
    time.sleep(seconds)  # the blocking call under test, not a wait for something
    return {"blocked_s": seconds}


async def test_a_decision_that_holds_the_loop_is_said_once_a_minute(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_work, "SLOW_DECISION_S", 0.05)
    node = function_node("linger", "lingering")
    async with open_test_host("runtime-dev-state", contracts=tree(node)) as host:
        quick = await host.request("linger", {"block_s": 0.0})
        slow = [await host.request("linger", {"block_s": 0.06}) for _ in range(2)]
    assert quick.payload == {"blocked_s": 0.0}
    assert [r.payload for r in slow] == [{"blocked_s": 0.06}] * 2  # answered all the same
    said = [r.getMessage() for r in caplog.records if "to decide" in r.getMessage()]
    assert len(said) == 1, said  # the second within the minute is not said again
    assert re.match(r"node 'linger' took \d+\.\d s to decide 1 command\(s\)", said[0]), said
    assert "its compute.function or compute.output must be quick and do no I/O" in said[0]


def overflowing(payload: dict[str, JsonValue]) -> Mapping[str, JsonValue]:
    """A compute.function whose arithmetic leaves a double's range, as user code may."""
    n = payload["n"]
    assert isinstance(n, float)
    return {"squared": n * n}


async def test_a_number_json_cannot_hold_is_an_error_not_a_null_and_no_state_takes_it() -> None:
    """``inf`` written as JSON becomes ``null``: an answer, or a state restored from its
    changelog, would differ from what the node computed, silently."""
    squaring = function_node("square", "overflowing")
    growing = {
        "kind": "reducer",
        "node_id": "growth",
        "version": "0.1.0",
        "key": "input.k",
        "state": {"initial": {"v": 1.0}},
        "fold": {"assign": {"v": "state.v * input.f"}},
    }
    async with open_test_host("runtime-dev-state", contracts=tree(squaring, growing)) as host:
        squared = await host.request("square", {"n": 1e200})
        grown = await host.request("growth", {"k": "a", "f": 1e300})
        overflowed = await host.request("growth", {"k": "a", "f": 1e300})
        halved = await host.request("growth", {"k": "a", "f": 0.5})
        await host.collector.wait_until(
            lambda: host.dead_letters("square") and host.dead_letters("growth")
        )
    assert squared.error is not None
    assert squared.error.type == "invalid_result"
    assert "'payload.squared' is NaN or infinite" in squared.error.message
    assert grown.payload == {"key": "a", "state": {"v": 1e300}}
    assert overflowed.error is not None
    assert overflowed.error.type == "expression_failed"
    assert "'state.v * input.f' gave inf" in overflowed.error.message
    assert halved.payload == {"key": "a", "state": {"v": 5e299}}
    assert [d.error.type for d in host.dead_letters("growth") if d.error] == ["expression_failed"]


async def scaled_later(payload: dict[str, JsonValue]) -> Mapping[str, JsonValue]:
    """An async compute.function: refused (its result would be a coroutine)."""
    return payload


def scaled_by(payload: dict[str, JsonValue], factor: int) -> Mapping[str, JsonValue]:
    """A compute.function that needs more than the payload: refused."""
    return payload


@pytest.mark.parametrize(
    ("function", "said"),
    [
        ("tests.runtime.no_such_module:scaled", "cannot be imported"),
        ("tests.runtime.raises_when_imported:f", "raised RuntimeError: the module's own bug"),
        ("tests.runtime.test_pure_nodes:nothing_here", "has no function 'nothing_here'"),
        ("tests.runtime.test_pure_nodes:scaled_later", "'scaled_later' is async"),
        ("tests.runtime.test_pure_nodes:scaled_by", "cannot be called with the payload alone"),
    ],
)
async def test_a_compute_function_that_cannot_serve_stops_the_start_naming_the_key(
    function: str, said: str
) -> None:
    broken = function_node("scale", function)
    with pytest.raises(ConfigError, match=rf"key 'compute.function'.*{re.escape(said)}"):
        async with open_runtime_host(
            "runtime-dev-state", HostConfig(), registry=tree(broken), bus=InProcessBus()
        ):
            pass


async def test_an_account_takes_transitions_refuses_with_state_unchanged_and_sends_intents() -> (
    None
):
    async with open_test_host("runtime-dev-state", contracts=tree()) as host:

        async def account(**payload: JsonValue) -> Any:
            return await host.request("account", {"account_id": "a1", **payload})

        deposited = await account(trigger="deposit", amount=50)
        overdrawn = await account(trigger="withdraw", amount=80)
        withdrawn = await account(trigger="withdraw", amount=20)
        frozen = await account(trigger="freeze")
        refused = await account(trigger="deposit", amount=5)
        closed = await account(trigger="close")
        notified = await host.collector.results(closed.correlation_id, count=2)
        await host.collector.wait_until(lambda: len(host.dead_letters("account")) == 2)
        state = reducer_of(host, "account").state_of("a1")
    assert deposited.payload["state"] == {"balance": 50, "status": "open"}
    assert overdrawn.error is not None
    assert overdrawn.error.type == "guard_rejected"
    assert withdrawn.payload["state"] == {"balance": 30, "status": "open"}
    assert frozen.payload["to"] == "frozen"
    assert refused.error is not None
    assert refused.error.type == "no_transition"
    assert closed.payload["state"] == {"balance": 30, "status": "closed"}
    (echoed,) = [e for e in notified if e.node_id == "echo-node"]
    assert echoed.payload == {"closed_account": "a1", "final_balance": 30}
    assert echoed.correlation_id == closed.correlation_id
    assert state == {"balance": 30, "status": "closed"}
    reasons = [d.error.type for d in host.dead_letters("account") if d.error]
    assert reasons == ["guard_rejected", "no_transition"]


class StatesBus(InProcessBus):
    """An in-process bus whose reducers' changelog records a test can read."""

    async def states_of(self, node_id: str, stored: str) -> list[dict[str, Any]]:
        """The changelog records of ``stored`` (``<tenant>/<key>``), oldest first."""
        found: list[dict[str, Any]] = []

        def apply(records: Sequence[Record]) -> None:
            found.extend(
                json.loads(r.value)["value"]
                for r in records
                if r.key == stored.encode() and r.value is not None
            )

        for partition in range(self.partitions):
            await self.read_changelog(state_topic(node_id), partition, apply)
        return found


class SlowTopicBus(StatesBus):
    """Appends every record at once, but acknowledges ``topic``'s only on ``release``."""

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic
        self.held: list[BatchAck] = []

    async def publish(
        self, records: Sequence[OutboundRecord], on_ack: BatchAck | None = None
    ) -> None:
        if on_ack is not None and any(r.topic == self.topic for r in records):
            self.held.append(on_ack)
            on_ack = None
        await super().publish(records, on_ack)

    def release(self) -> None:
        for on_ack in self.held:
            on_ack(())
        self.held.clear()


async def test_at_least_once_a_reducers_state_is_written_after_its_intents_are_acknowledged() -> (
    None
):
    """A crash between the two must not leave a state holding a command whose intents
    were lost: read again, the command would be a duplicate and send nothing."""
    bus = SlowTopicBus(cmd_topic("echo-node"))  # where the account's `close` intent goes
    async with open_test_host("runtime-dev-state", contracts=tree(), bus=bus) as host:
        await host.request("account", {"account_id": "a1", "trigger": "deposit", "amount": 5})
        before = await bus.states_of("account", "global/a1")
        closing = await host.send("account", {"account_id": "a1", "trigger": "close"})
        answer = await host.result(closing)  # answered, its intent sent, not acknowledged
        await trio.testing.wait_all_tasks_blocked()
        waiting = await bus.states_of("account", "global/a1")
        bus.release()
        await host.collector.wait_until(lambda: not bus.held)
        await trio.testing.wait_all_tasks_blocked()
        after = await bus.states_of("account", "global/a1")
    assert answer.payload["state"] == {"balance": 5, "status": "closed"}
    assert before == [{"balance": 5, "status": "open"}]
    assert waiting == before
    assert after == [*before, {"balance": 5, "status": "closed"}]


async def test_a_reducer_killed_while_its_intents_wait_writes_its_state_and_commits() -> None:
    """The kill waits for the acknowledgements: the decided state is written, the command
    (handled again, a duplicate of it) committed, its intent sent once."""
    bus = SlowTopicBus(cmd_topic("echo-node"))
    async with open_test_host("runtime-dev-state", contracts=tree(), bus=bus) as host:
        await host.request("account", {"account_id": "a1", "trigger": "deposit", "amount": 5})
        closing = await host.send("account", {"account_id": "a1", "trigger": "close"})
        await host.result(closing)
        await trio.testing.wait_all_tasks_blocked()  # waiting for the intent's ack
        assert host.kill("account")
        bus.release()
        await host.collector.wait_until(
            lambda: host.health().nodes["account"].restarts == 1 and not bus.held
        )
        await host.request("account", {"account_id": "a2", "trigger": "deposit", "amount": 1})
    states = await bus.states_of("account", "global/a1")
    topic = cmd_topic("account")
    ends: dict[int, int] = {}
    for record in bus.records(topic):
        ends[record.partition] = record.offset + 1
    committed = bus.committed("runtime-dev-state")
    intents = [decode_envelope(r.value) for r in bus.records(cmd_topic("echo-node")) if r.value]
    assert states[-1] == {"balance": 5, "status": "closed"}
    assert {p: committed.get(TopicPartition(topic, p), 0) for p in ends} == ends
    assert [i.causation_id for i in intents] == [closing.envelope_id]


class RefusingTopicBus(StatesBus):
    """Refuses every record of a topic in its next few lists, as a broker that keeps failing."""

    def __init__(self) -> None:
        super().__init__(partitions=4)
        self.refused: dict[str, int] = {}
        """Per topic, how many more lists have its records refused."""

    def refuse(self, topic: str, lists: int) -> None:
        """Refuse ``topic``'s records in the next ``lists`` lists that carry some."""
        self.refused[topic] = lists

    async def publish(
        self, records: Sequence[OutboundRecord], on_ack: BatchAck | None = None
    ) -> None:
        refused = {r.topic for r in records if self.refused.get(r.topic, 0) > 0}
        if not refused:
            await super().publish(records, on_ack)
            return
        for topic in refused:
            self.refused[topic] -= 1
        failures = [
            (index, BusError(f"{record.topic}: the broker refused it"))
            for index, record in enumerate(records)
            if record.topic in refused
        ]
        await super().publish([r for r in records if r.topic not in refused])
        if on_ack is not None:
            on_ack(failures)


def partition_of(bus: InProcessBus, command: OnexEnvelope) -> TopicPartition:
    """The topic partition ``command`` was written to."""
    topic = cmd_topic(command.node_id)
    for record in bus.records(topic):
        if record.value is not None and decode_envelope(record.value).envelope_id == (
            command.envelope_id
        ):
            return TopicPartition(topic, record.partition)
    raise AssertionError(f"command {command.envelope_id} is not on {topic}")


async def run_until_it_stops(
    bus: InProcessBus, body: Callable[[HostHarness], Awaitable[None]]
) -> None:
    """Run ``body`` in a host on ``bus``, then wait until the host stops itself."""
    async with open_test_host("runtime-dev-state", contracts=tree(), bus=bus) as host:
        await body(host)
        await trio.sleep_forever()


async def test_a_state_record_that_cannot_be_written_stops_the_host_and_is_decided_again() -> None:
    """At least once, a state record the broker refuses (after the retry) is not replaced
    by an error answer: the state holds the command, so the host stops with nothing past
    it committed, and the next host restores the changelog and folds the command once."""
    bus = RefusingTopicBus()
    bus.refuse(state_topic("order-totals"), lists=2)  # the first try and the outbox's retry
    sent: list[OnexEnvelope] = []

    async def fold_one(host: HostHarness) -> None:
        sent.append(await host.send("order-totals", {"customer": "c", "amount": 5}))

    with pytest.raises(ExceptionGroup) as info, trio.fail_after(30):
        await run_until_it_stops(bus, fold_one)
    (command,) = sent
    assert info.group_contains(
        BusError,
        match=r"node 'order-totals': a record for onex\.app\.local\.global\.state\.node\."
        r"order-totals\.v1 \(partition \d\) could not be produced: .*the host stops",
    )
    where = partition_of(bus, command)
    assert bus.records(state_topic("order-totals")) == []
    assert bus.records(dlq_topic("order-totals")) == []  # no error answer: not a failed command
    assert bus.committed("runtime-dev-state").get(where, 0) == 0  # read again after a restart
    async with open_test_host("runtime-dev-state", contracts=tree(), bus=bus) as again:
        await again.collector.wait_until(lambda: len(again.results_of(command)) >= 2)
        later = await again.request("order-totals", {"customer": "c", "amount": 7})
        answers = again.results_of(command)
    decided = [a for a in answers if not a.payload.get("duplicate")]
    # the first host's answer and the one decided again from the restored state; a
    # command written to another partition than its key's is sent on to it again when
    # read again, so its key's partition may hold it twice: the second is a duplicate
    assert len(decided) == 2
    assert decided[0] == decided[1]
    assert {a.status for a in answers} == {EnvelopeStatus.OK}
    assert all(a.payload["state"] == {"orders": 1, "total": 5} for a in answers)
    assert later.payload["state"] == {"orders": 2, "total": 12}


async def test_an_intent_that_cannot_be_sent_stops_the_host_before_its_state_is_written() -> None:
    """The state of a command whose intent was lost is not written: the next host decides
    the command again and sends the intent, rather than read it as a duplicate."""
    bus = RefusingTopicBus()
    sent: list[OnexEnvelope] = []

    async def deposit_then_close(host: HostHarness) -> None:
        await host.request("account", {"account_id": "a1", "trigger": "deposit", "amount": 5})
        bus.refuse(cmd_topic("echo-node"), lists=2)  # where `close` sends its intent
        sent.append(await host.send("account", {"account_id": "a1", "trigger": "close"}))

    with pytest.raises(ExceptionGroup) as info, trio.fail_after(30):
        await run_until_it_stops(bus, deposit_then_close)
    (closing,) = sent
    assert info.group_contains(BusError, match=r"node 'account': a record for .*echo-node")
    assert await bus.states_of("account", "global/a1") == [{"balance": 5, "status": "open"}]
    async with open_test_host("runtime-dev-state", contracts=tree(), bus=bus) as again:
        await again.collector.wait_until(
            lambda: (
                any(r.causation_id == closing.envelope_id for r in again.results_of(closing))
                and any(r.node_id == "echo-node" for r in again.results_of(closing))
            )
        )
        state = reducer_of(again, "account").state_of("a1")
    intents = [decode_envelope(r.value) for r in bus.records(cmd_topic("echo-node")) if r.value]
    assert state == {"balance": 5, "status": "closed"}
    assert [i.causation_id for i in intents] == [closing.envelope_id]
    assert await bus.states_of("account", "global/a1") == [
        {"balance": 5, "status": "open"},
        {"balance": 5, "status": "closed"},
    ]


class LimitedBus(StatesBus):
    """Takes changelog records of at most ``limit`` bytes, as a broker's limits would."""

    def __init__(self, limit: int, node_id: str = "tallies") -> None:
        super().__init__(partitions=4)
        self.limit = limit
        self.changelog = state_topic(node_id)

    def record_limit(self, topic: str) -> int | None:
        return self.limit if topic == self.changelog else None


TALLIES = {
    "kind": "reducer",
    "node_id": "tallies",
    "version": "0.1.0",
    "key": "input.name",
    "state": {"initial": {"n": 0}, "max_bytes": 100},
    "fold": {"assign": {"n": "state.n + 1"}},
}
ROOM_FOR_TALLIES = 100 + KEY_STATE_EXTRA_BYTES + RECORD_OVERHEAD
"""The smallest record limit a state of TALLIES' ``max_bytes`` fits in."""


async def test_a_reducer_whose_states_cannot_fit_its_changelog_records_is_refused_at_start() -> (
    None
):
    bus = LimitedBus(ROOM_FOR_TALLIES - 1)
    with pytest.raises(  # itself, not in an exception group: the start failed
        ConfigError,
        match=rf"reducer 'tallies': state\.max_bytes is 100, but its changelog \S+ takes "
        rf"records of at most {ROOM_FOR_TALLIES - 1} bytes .*lower state\.max_bytes",
    ):
        async with open_test_host("runtime-dev-state", contracts=tree(TALLIES), bus=bus):
            pass


async def test_a_state_record_over_the_changelogs_limit_is_refused_with_the_state_unchanged() -> (
    None
):
    """A long key can take a state record past the limit the start-up check allows for:
    refused before the store, so no state holds what its changelog could not."""
    bus = LimitedBus(ROOM_FOR_TALLIES)
    async with open_test_host("runtime-dev-state", contracts=tree(TALLIES), bus=bus) as host:
        refused = await host.request("tallies", {"name": "k" * 1000})
        counted = await host.request("tallies", {"name": "short"})
        reducer = reducer_of(host, "tallies")
        states = (reducer.state_of("k" * 1000), reducer.state_of("short"))
        await host.collector.wait_until(lambda: bool(host.dead_letters("tallies")))
        letters = host.dead_letters("tallies")
    assert refused.status is EnvelopeStatus.ERROR
    assert refused.error is not None
    assert refused.error.type == "state_too_large"
    assert f"over the {ROOM_FOR_TALLIES} bytes the producer may send" in refused.error.message
    assert [d.error.type for d in letters if d.error] == ["state_too_large"]
    assert counted.payload["state"] == {"n": 1}
    assert states == (None, {"n": 1})
    assert await bus.states_of("tallies", "global/" + "k" * 1000) == []


NOTES = {
    "kind": "reducer",
    "node_id": "notes",
    "version": "0.1.0",
    "key": "input.name",
    "state": {"initial": {"text": ""}, "max_bytes": 8000},
    "fold": {"assign": {"text": "state.text + input.text"}},
}


async def test_a_state_whose_answer_is_too_large_is_still_written_and_the_error_says_so() -> None:
    """The store holds the command once it is decided: its changelog record goes out even
    when its answer cannot, so a restore gives back the state the host had."""
    bus = StatesBus(partitions=4)
    config = HostConfig(max_envelope_bytes=2048)
    async with open_test_host(
        "runtime-dev-state", contracts=tree(NOTES), bus=bus, config=config
    ) as host:
        first = await host.request("notes", {"name": "n", "text": "x" * 1200})
        second = await host.request("notes", {"name": "n", "text": "y" * 1200})
        held = reducer_of(host, "notes").state_of("n")
        await host.collector.wait_until(lambda: bool(host.dead_letters("notes")))
        letters = host.dead_letters("notes")
    written = await bus.states_of("notes", "global/n")
    assert first.status is EnvelopeStatus.OK
    assert second.status is EnvelopeStatus.ERROR
    assert second.error is not None
    assert second.error.type == "result_too_large"
    assert "node 'notes' took the command (its new state is kept)" in second.error.message
    assert [d.error.type for d in letters if d.error] == ["result_too_large"]
    assert held == {"text": "x" * 1200 + "y" * 1200}
    assert written[-1] == held  # without the fix the changelog stopped at the first command


async def test_commands_keyed_anyhow_fold_with_their_key_and_are_answered_once() -> None:
    bus = InProcessBus(partitions=4)
    rng = random.Random(7)
    sent: list[tuple[str, int]] = []
    async with open_test_host("runtime-dev-state", contracts=tree(), bus=bus) as host:
        commands = []
        for _ in range(300):
            customer, amount = f"c{rng.randrange(20)}", rng.randrange(1, 100)
            # a third keyed right, a third by another key, a third by the flow (a producer
            # that keys nothing: the record's key is then the correlation id)
            choice = rng.randrange(3)
            payload: dict[str, JsonValue] = {"customer": customer, "amount": amount}
            if choice == 2:
                command = new_command("order-totals", payload)
                await host.host.outbox.emit(command, cmd_topic("order-totals"))
            else:
                key = f"global/{customer}" if choice == 0 else f"other-{rng.randrange(99)}"
                command = await host.send(
                    "order-totals", payload, headers={PARTITION_KEY_HEADER: key}
                )
            commands.append(command)
            sent.append((customer, amount))
        for command in commands:
            await host.result(command)
        answers = list(host.collector.by_topic["onex.app.local.global.evt.node.order-totals.v1"])
        totals = reducer_of(host, "order-totals")
        states = {c: totals.state_of(c) for c, _ in sent}
        rekeyed = totals.rekeyed
    expected_total: Counter[str] = Counter()
    expected_orders: Counter[str] = Counter()
    for customer, amount in sent:
        expected_total[customer] += amount
        expected_orders[customer] += 1
    assert states == {
        c: {"orders": expected_orders[c], "total": expected_total[c]} for c in expected_total
    }
    assert sorted(e.causation_id for e in answers) == sorted(c.envelope_id for c in commands)
    assert rekeyed >= 100  # two thirds were keyed otherwise; those off their key's partition
    copies = [decode_envelope(r.value) for r in bus.records(cmd_topic("order-totals"))]  # type: ignore[arg-type]
    assert len(copies) == 300 + rekeyed
    twice = Counter(c.envelope_id for c in copies)
    sent_on = [c for c in copies if twice[c.envelope_id] == 2]
    assert len(sent_on) == 2 * rekeyed
    for envelope_id in {c.envelope_id for c in sent_on}:
        keys = {
            c.headers.get(PARTITION_KEY_HEADER) for c in sent_on if c.envelope_id == envelope_id
        }
        customer = next(c.payload["customer"] for c in sent_on if c.envelope_id == envelope_id)
        assert f"global/{customer}" in keys  # the copy is keyed by the stored key
        assert len(keys) == 2


async def test_a_redelivered_command_is_answered_again_and_folded_once() -> None:
    async with open_test_host("runtime-dev-state", contracts=tree()) as host:
        first = await host.request("order-totals", {"customer": "c", "amount": 5})
        command = await host.send(
            "order-totals", {"customer": "c", "amount": 7}, headers={PARTITION_KEY_HEADER: "c"}
        )
        await host.result(command)
        # the same envelope again, as a producer's retry would write it
        await host.host.outbox.emit(command, cmd_topic("order-totals"))
        await host.collector.wait_until(lambda: len(host.results_of(command)) >= 1)
        await host.request("order-totals", {"customer": "c", "amount": 1})
        state = reducer_of(host, "order-totals").state_of("c")
    assert first.payload["state"] == {"orders": 1, "total": 5}
    assert state == {"orders": 3, "total": 13}


async def test_each_tenant_has_its_own_state_for_a_key() -> None:
    async with open_test_host("runtime-dev-state", contracts=tree()) as host:
        ours = await host.request("order-totals", {"customer": "c", "amount": 5})
        theirs = await host.request(
            "order-totals", {"customer": "c", "amount": 100}, tenant_id="acme"
        )
        totals = reducer_of(host, "order-totals")
        assert totals.state_of("c") == {"orders": 1, "total": 5}
        assert totals.state_of("c", tenant="acme") == {"orders": 1, "total": 100}
    assert ours.payload["state"] == {"orders": 1, "total": 5}
    assert theirs.payload["state"] == {"orders": 1, "total": 100}


async def test_a_new_host_on_the_same_bus_restores_the_state_from_the_changelog() -> None:
    bus = InProcessBus(partitions=4)
    async with open_test_host("runtime-dev-state", contracts=tree(), bus=bus) as host:
        for customer, amount in [("c1", 5), ("c2", 7), ("c1", 3)]:
            await host.request("order-totals", {"customer": customer, "amount": amount})
    changelog = bus.records(state_topic("order-totals"))
    written: dict[bytes | None, list[Any]] = {}
    for record in changelog:  # partition by partition, each in order
        assert record.value is not None
        assert record.partition == home_partition(record.key or b"", 4)
        written.setdefault(record.key, []).append(KeyState.from_bytes(record.value).value)
    assert written == {  # kept per tenant
        b"global/c1": [{"orders": 1, "total": 5}, {"orders": 2, "total": 8}],
        b"global/c2": [{"orders": 1, "total": 7}],
    }
    async with open_test_host("runtime-dev-state", contracts=tree(), bus=bus) as again:
        answer = await again.request("order-totals", {"customer": "c1", "amount": 1})
        restorer = again.host.restorer
        assert restorer is not None
        restored = {(r.partition, r.keys) for r in restorer.restores}
    assert answer.payload["state"] == {"orders": 3, "total": 9}
    c1_home = home_partition(b"global/c1", 4)
    assert (c1_home, 1 if home_partition(b"global/c2", 4) != c1_home else 2) in restored


PARKING = {
    "kind": "reducer",
    "node_id": "parking",
    "version": "0.1.0",
    "key": "input.car",
    "fsm": {
        "states": ["idle", "parked", "towed"],
        "initial_state": "idle",
        "timeouts": {"parked": 0.2},
        "transitions": [
            {
                "transition_name": "park",
                "from_state": "idle",
                "to_state": "parked",
                "trigger": "park",
            },
            {
                "transition_name": "tow",
                "from_state": "parked",
                "to_state": "towed",
                "trigger": "timeout",
            },
        ],
    },
}


async def test_a_state_timeout_fires_once_even_after_a_restart() -> None:
    bus = InProcessBus(partitions=4)
    evt = "onex.app.local.global.evt.node.parking.v1"
    async with open_test_host("runtime-dev-state", contracts=tree(PARKING), bus=bus) as host:
        parked = await host.request("parking", {"car": "c1", "trigger": "park"})
        # stopped before its first scan (every second): the deadline is in the changelog
    assert parked.payload["state"] == {"status": "parked"}
    async with open_test_host("runtime-dev-state", contracts=tree(PARKING), bus=bus) as again:
        await again.request("parking", {"car": "c2", "trigger": "park"})
        with trio.fail_after(10):
            await again.collector.wait_until(
                lambda: (
                    sum(e.payload.get("transition") == "tow" for e in again.collector.by_topic[evt])
                    >= 2
                )
            )
        state = reducer_of(again, "parking").state_of("c1")
        # both keys left "parked": scanning again finds nothing due, so nothing fires twice
        assert await again.host.timers.scan() == 0
        tows = [e for e in again.collector.by_topic[evt] if e.payload.get("transition") == "tow"]
    assert state == {"status": "towed"}
    assert sorted(e.payload["key"] for e in tows) == ["c1", "c2"]


async def test_under_a_mock_clock_an_hours_timeout_fires_when_the_test_sleeps_past_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hour = copy.deepcopy(PARKING)
    hour["fsm"]["timeouts"] = {"parked": 3600}
    async with open_test_host("runtime-dev-state", contracts=tree(hour)) as host:
        await host.request("parking", {"car": "c1", "trigger": "park"})
        await trio.sleep(3500)
        before = host.state("parking", "c1")
        await trio.sleep(200)  # past the hour, in trio's time: no real time passes
        after = host.state("parking", "c1")
    assert before == {"status": "parked"}
    assert after == {"status": "towed"}


async def test_a_timeout_its_guard_declines_is_answered_once_and_not_dead_lettered() -> None:
    paid = copy.deepcopy(PARKING)
    paid["state"] = {"initial": {"paid": True}}
    paid["fsm"]["transitions"][1]["guard"] = "!state.paid"  # tow only the unpaid
    bus = InProcessBus(partitions=4)
    evt = evt_topic("parking")

    def declined(host: HostHarness) -> list[OnexEnvelope]:
        return [e for e in host.collector.by_topic[evt] if "timeout_declined" in e.payload]

    async with open_test_host("runtime-dev-state", contracts=tree(paid), bus=bus) as host:
        await host.request("parking", {"car": "c1", "trigger": "park"})
        with trio.fail_after(10):
            await host.collector.wait_until(lambda: declined(host))
        first = declined(host)
        dead = host.dead_letters("parking")
    async with open_test_host("runtime-dev-state", contracts=tree(paid), bus=bus) as again:
        # answered (an error, state unchanged) once c1's partition is restored
        honk = await again.request("parking", {"car": "c1", "trigger": "honk"})
        # restored without a deadline: nothing is due, so nothing fires again
        assert await again.host.timers.scan() == 0
        state = reducer_of(again, "parking").state_of("c1")
    assert honk.error is not None
    assert honk.error.type == "no_transition"
    assert [e.payload["timeout_declined"] for e in first] == ["tow (!state.paid)"]
    assert dead == []
    assert state == {"paid": True, "status": "parked"}


async def test_a_timer_command_the_broker_refuses_is_sent_again_at_the_next_scan() -> None:
    bus = RefusingTopicBus()
    evt = evt_topic("parking")
    async with open_test_host("runtime-dev-state", contracts=tree(PARKING), bus=bus) as host:
        await host.request("parking", {"car": "c1", "trigger": "park"})
        bus.refuse(cmd_topic("parking"), lists=2)  # the first timer command and its retry
        with trio.fail_after(10):  # without the second send, the key stays parked
            await host.collector.wait_until(
                lambda: any(
                    e.payload.get("transition") == "tow" for e in host.collector.by_topic[evt]
                )
            )
        state = reducer_of(host, "parking").state_of("c1")
    assert state == {"status": "towed"}
    assert bus.refused[cmd_topic("parking")] == 0  # the refusals were spent on the timer


VISITS = {
    "kind": "reducer",
    "node_id": "visits",
    "version": "0.1.0",
    "key": "input.user",
    "fold": {"assign": {"n": "state.n + 1"}},
    "state": {"initial": {"n": 0}, "ttl_s": 0.3},
}


async def test_a_key_past_its_ttl_is_deleted_with_a_tombstone_and_starts_again() -> None:
    bus = InProcessBus(partitions=4)
    evt = "onex.app.local.global.evt.node.visits.v1"
    async with open_test_host("runtime-dev-state", contracts=tree(VISITS), bus=bus) as host:
        first = await host.request("visits", {"user": "u1"})
        with trio.fail_after(10):
            await host.collector.wait_until(
                lambda: any(e.payload.get("expired") for e in host.collector.by_topic[evt])
            )
        expired = [e for e in host.collector.by_topic[evt] if e.payload.get("expired")]
        gone = reducer_of(host, "visits").state_of("u1")
        # nothing due any more: the expired key is not fired at again
        assert await host.host.timers.scan() == 0
        again = await host.request("visits", {"user": "u1"})
    assert first.payload["state"] == {"n": 1}
    assert [e.payload for e in expired] == [{"key": "u1", "state": None, "expired": True}]
    assert gone is None
    assert again.payload["state"] == {"n": 1}  # from the initial state, not {"n": 2}
    changelog = [r for r in bus.records(state_topic("visits")) if r.key == b"global/u1"]
    assert [r.value is None for r in changelog] == [False, True, False]


ECHO_COUNTS = {
    "kind": "reducer",
    "node_id": "echo-counts",
    "version": "0.1.0",
    "key": "input.who",
    "input": {"events_of": ["echo-node"]},
    "fold": {"assign": {"n": "state.n + 1", "last": "input.word"}},
    "state": {"initial": {"n": 0, "last": ""}},
}


async def test_a_reducer_folds_the_ok_results_of_the_nodes_it_names_once_each() -> None:
    bus = InProcessBus(partitions=4)
    evt = "onex.app.local.global.evt.node.echo-counts.v1"
    async with open_test_host("runtime-dev-state", contracts=tree(ECHO_COUNTS), bus=bus) as host:
        words = [("ann", "a"), ("bob", "b"), ("ann", "c"), ("ann", "d"), ("bob", "e")]
        for who, word in words:
            answer = await host.request("echo-node", {"who": who, "word": word})
            assert answer.status is EnvelopeStatus.OK
        # an echo without "who": its event has no key, so it is refused with a dead letter
        await host.request("echo-node", {"word": "nobody"})
        with trio.fail_after(10):
            await host.collector.wait_until(lambda: len(host.collector.by_topic[evt]) >= 6)
        handler = reducer_of(host, "echo-counts")
        ann, bob = handler.state_of("ann"), handler.state_of("bob")
        answers = list(host.collector.by_topic[evt])
        echoes = {
            e.envelope_id
            for e in host.collector.by_topic["onex.app.local.global.evt.node.echo-node.v1"]
        }
    assert ann == {"n": 3, "last": "d"}
    assert bob == {"n": 2, "last": "e"}
    folded = [a for a in answers if a.status is EnvelopeStatus.OK]
    refused = [a for a in answers if a.status is EnvelopeStatus.ERROR]
    assert len(folded) == 5
    # each answer's cause is the command made from one echo result, caused by that result
    assert all(a.causation_id is not None for a in folded)
    assert len(refused) == 1
    assert refused[0].error is not None
    assert refused[0].error.type == "bad_key"
    assert refused[0].causation_id in echoes
    # the events went through the reducer's own topic, each in its key's partition
    sent_on = bus.records(cmd_topic("echo-counts"))
    assert len(sent_on) == 5
    assert all(r.partition == home_partition(r.key or b"", 4) for r in sent_on)


TAG_COUNTS = {
    "kind": "reducer",
    "node_id": "tag-counts",
    "version": "0.1.0",
    "key": "input.tag",
    "input": {"events_of": ["echo-node"]},
    "fold": {"assign": {"n": "state.n + 1"}},
    "state": {"initial": {"n": 0}},
}

TWO_FOLDERS = ("echo-counts", "tag-counts")


async def test_two_reducers_fold_one_nodes_results_each_refusing_what_it_cannot_key() -> None:
    bus = InProcessBus(partitions=4)
    registry = tree(ECHO_COUNTS, TAG_COUNTS)
    table = build_routing_table(
        registry.runtime_contract("runtime-dev-state"), registry.node_contracts()
    )
    # one read of echo-node's results for the runtime: the first reducer's
    assert table.event_folders == {"echo-node": ("echo-counts", "tag-counts")}
    assert table.event_readers[evt_topic("echo-node")].node.node_id == "echo-counts"
    async with open_test_host("runtime-dev-state", contracts=registry, bus=bus) as host:
        echoes = [
            {"who": "ann", "word": "a", "tag": "x"},
            {"who": "bob", "word": "b", "tag": "x"},
            {"who": "ann", "word": "c"},  # no tag: tag-counts refuses it, echo-counts folds
            {"word": "d", "tag": "y"},  # no who: echo-counts refuses it, tag-counts folds
        ]
        for payload in echoes:
            answer = await host.request("echo-node", payload)
            assert answer.status is EnvelopeStatus.OK
        answered = {node: host.collector.by_topic[evt_topic(node)] for node in TWO_FOLDERS}
        with trio.fail_after(10):
            await host.collector.wait_until(lambda: all(len(a) >= 4 for a in answered.values()))
            # each refusal's dead letter is written after its error answer
            await host.collector.wait_until(
                lambda: all(host.dead_letters(node) for node in TWO_FOLDERS)
            )
        by_who, by_tag = reducer_of(host, "echo-counts"), reducer_of(host, "tag-counts")
        states = {
            "ann": by_who.state_of("ann"),
            "bob": by_who.state_of("bob"),
            "x": by_tag.state_of("x"),
            "y": by_tag.state_of("y"),
        }
        read = (by_who.events_read, by_tag.events_read)
        dead = {node: host.dead_letters(node) for node in TWO_FOLDERS}
    assert states == {
        "ann": {"n": 2, "last": "c"},
        "bob": {"n": 1, "last": "b"},
        "x": {"n": 2},
        "y": {"n": 1},
    }
    assert read == (3, 3)
    for node in TWO_FOLDERS:
        statuses = sorted(a.status.value for a in answered[node])
        assert statuses == ["error", "ok", "ok", "ok"], node
        (refused,) = [a for a in answered[node] if a.error is not None]
        assert refused.error is not None
        assert refused.error.type == "bad_key"
        assert [d.error.type for d in dead[node] if d.error is not None] == ["bad_key"]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            [{**ECHO_COUNTS, "input": {"events_of": ["nobody-node"]}}],
            r"key 'input\.events_of': no node contract for 'nobody-node'",
        ),
    ],
)
def test_events_of_must_name_a_known_node(extra: list[dict[str, Any]], problem: str) -> None:
    registry = tree(*extra)
    with pytest.raises(ContractError, match=problem):
        build_routing_table(
            registry.runtime_contract("runtime-dev-state"), registry.node_contracts()
        )


SIGNUP = {
    "kind": "orchestrator",
    "node_id": "signup-flow",
    "version": "0.1.0",
    "workflow": {
        "steps": [
            {"name": "hello", "node_id": "echo-node", "payload": {"text": "'hi ' + input.user"}},
            {
                "name": "deposit",
                "node_id": "account",
                "depends_on": ["hello"],
                "payload": {
                    "account_id": "input.user",
                    "trigger": "'deposit'",
                    "amount": "input.amount",
                },
                "compensate": {
                    "node_id": "account",
                    "payload": {
                        "account_id": "input.user",
                        "trigger": "'withdraw'",
                        "amount": "input.amount",
                    },
                },
            },
            {
                "name": "quote",
                "node_id": "price-quote",
                "depends_on": ["hello"],
                "payload": {"net": "input.amount", "quantity": "input.quantity"},
            },
        ],
        "output": {
            "greeting": "steps.hello.output.text",
            "balance": "steps.deposit.output.state.balance",
            "quote": "steps.quote.output.line_total",
        },
        "on_failure": "compensate",
    },
}


async def test_a_workflow_runs_its_steps_across_nodes_and_answers_the_start_command() -> None:
    bus = InProcessBus(partitions=4)
    async with open_test_host("runtime-dev-state", contracts=tree(SIGNUP), bus=bus) as host:
        done = await host.request("signup-flow", {"user": "ann", "amount": 50, "quantity": 2})
        handler = orchestrator_of(host, "signup-flow")
        instance = handler.state_of(str(done.correlation_id))
        balance = reducer_of(host, "account").state_of("ann")
    assert done.status is EnvelopeStatus.OK
    assert done.payload == {"greeting": "hi ann", "balance": 50, "quote": 120.0}
    assert instance is not None
    assert instance["status"] == "completed"
    assert {n: s["status"] for n, s in instance["steps"].items()} == {
        "hello": "done",
        "deposit": "done",
        "quote": "done",
    }
    assert balance is not None
    assert balance["balance"] == 50


async def test_a_failed_step_is_compensated_and_the_workflow_answers_with_the_failure() -> None:
    bus = InProcessBus(partitions=4)
    async with open_test_host("runtime-dev-state", contracts=tree(SIGNUP), bus=bus) as host:
        # quantity "x" makes price-quote's expression fail: the deposit is undone
        failed = await host.request("signup-flow", {"user": "bob", "amount": 30, "quantity": "x"})
        balance = reducer_of(host, "account").state_of("bob")
    assert failed.status is EnvelopeStatus.ERROR
    assert failed.error is not None
    assert failed.error.type == "workflow_failed"
    assert "step 'quote' failed" in failed.error.message
    assert failed.payload["status"] == "compensated"
    assert balance is not None
    assert balance["balance"] == 0  # deposited 30, withdrawn 30 by the compensation


async def test_a_second_start_of_one_instance_is_refused_with_an_error_and_a_dead_letter() -> None:
    bus = InProcessBus(partitions=4)
    async with open_test_host("runtime-dev-state", contracts=tree(SIGNUP), bus=bus) as host:
        first = await host.request("signup-flow", {"user": "eve", "amount": 5, "quantity": 1})
        again = await host.request(
            "signup-flow",
            {"user": "mallory", "amount": 500, "quantity": 1},
            correlation_id=first.correlation_id,
        )
        await host.collector.wait_until(lambda: host.dead_letters("signup-flow"))
        (dead,) = host.dead_letters("signup-flow")
        handler = orchestrator_of(host, "signup-flow")
        instance = handler.state_of(str(first.correlation_id))
    assert first.status is EnvelopeStatus.OK
    assert again.error is not None
    assert again.error.type == "workflow_exists"
    assert f"instance {first.correlation_id} was already started" in again.error.message
    assert dead.error is not None
    assert dead.error.type == "workflow_exists"
    assert instance is not None
    assert instance["input"]["user"] == "eve"  # the instance is as the first start left it


async def test_a_workflow_shows_in_the_metrics() -> None:
    bus = InProcessBus(partitions=4)
    async with open_test_host("runtime-dev-state", contracts=tree(SIGNUP), bus=bus) as host:
        await host.request("signup-flow", {"user": "cy", "amount": 5, "quantity": 1})
        await host.request("signup-flow", {"user": "di", "amount": 5, "quantity": "x"})
        await trio.testing.wait_all_tasks_blocked()  # the worker counts once it has published
        text = generate_latest(host_registry(HostCollector(host.host))).decode()
    assert 'onex_workflow_instances_total{node="signup-flow",outcome="started"} 2.0' in text
    assert 'onex_workflow_instances_total{node="signup-flow",outcome="completed"} 1.0' in text
    assert 'onex_workflow_instances_total{node="signup-flow",outcome="compensated"} 1.0' in text
    assert 'onex_workflow_running{node="signup-flow"} 0.0' in text
    # a workflow's answer, sent as its last step ends, counts as the start command's
    answered = 'onex_envelopes_answered_total{node="signup-flow",status="%s"}'
    assert f"{answered % 'ok'} 1.0" in text
    assert f"{answered % 'error'} 1.0" in text
    # each step attempt is timed, by outcome: two hellos ok, one quote ok and one failed
    count = 'onex_workflow_step_duration_seconds_count{node="signup-flow",outcome="%s",step="%s"}'
    assert f"{count % ('ok', 'hello')} 2.0" in text
    assert f"{count % ('ok', 'quote')} 1.0" in text
    assert f"{count % ('error', 'quote')} 1.0" in text
    # and di's deposit, undone: its compensation's attempt, under the step's name
    assert f"{count % ('compensated', 'deposit')} 1.0" in text


async def test_a_changed_workflow_is_refused_while_instances_of_the_old_one_run() -> None:
    waiting = {  # its one step goes to a node no runtime here hosts: it stays running
        **SIGNUP,
        "workflow": {
            "steps": [{"name": "wait", "node_id": "summarize-text", "timeout_s": 600}],
        },
    }
    bus = InProcessBus(partitions=4)
    async with open_test_host("runtime-dev-state", contracts=tree(waiting), bus=bus) as host:
        start = await host.send("signup-flow", {"user": "eve"})
        handler = orchestrator_of(host, "signup-flow")
        with trio.fail_after(10):  # its step's command, written with its first state
            await bus.wait_for_records(cmd_topic("summarize-text"), 1)
        assert handler.counts.get("started") == 1
    changed = {**waiting, "version": "0.2.0"}
    with pytest.raises(ExceptionGroup) as info:
        async with open_test_host("runtime-dev-state", contracts=tree(changed), bus=bus):
            await trio.sleep_forever()  # the restore stops the host
    assert info.group_contains(
        ConfigError,
        match=(
            r"orchestrator 'signup-flow' has 1 running instance\(s\) started under version "
            rf"0\.1\.0 .* contract here is version 0\.2\.0.*onex state signup-flow "
            rf"{start.correlation_id}"
        ),
    )


async def test_a_step_answered_again_from_the_idempotency_window_replies_again() -> None:
    # after an aborted transaction the step command is read again and answered from the
    # window: its copy for the orchestrator was voided with the first answer, so it must
    # be sent again too, or the workflow's step waits out its timeout
    bus = InProcessBus(partitions=4)
    async with open_test_host("runtime-dev-state", contracts=tree(SIGNUP), bus=bus) as host:
        headers = {REPLY_TO_HEADER: "signup-flow", PARTITION_KEY_HEADER: "global/some-flow"}
        step = new_command("echo-node", {"text": "hi"}, headers=headers)
        flow = cmd_topic("signup-flow")

        def replies() -> list[OnexEnvelope]:
            found = [decode_envelope(r.value) for r in bus.records(flow)]
            return [e for e in found if e.type is EnvelopeType.EVT]  # not what is sent on

        for count in (1, 2):  # the second once the first is answered: from the window
            await host.host.outbox.emit(step, cmd_topic("echo-node"))
            with trio.fail_after(10):
                while len(replies()) < count:
                    await bus.wait_for_records(flow, bus.record_count(flow) + 1)
        answers = replies()
        work = host.host.runtime.actors["echo-node"]
        skipped = work.duplicates_skipped
    assert [(r.type.value, r.causation_id) for r in answers] == [
        ("evt", step.envelope_id),
        ("evt", step.envelope_id),
    ]
    assert skipped == 1  # the second was answered from the window, not handled again


FORWARDER = {
    "kind": "effect",
    "node_id": "forwarder",
    "version": "0.1.0",
    "effect_type": "local",
    "then": {"node_id": "echo-node", "payload": {"text": "$.result.text"}},
}


async def test_an_answer_sent_again_from_the_window_forwards_its_then_command_again() -> None:
    bus = InProcessBus(partitions=4)
    async with open_test_host("runtime-dev-state", contracts=tree(FORWARDER), bus=bus) as host:
        command = new_command("forwarder", {"text": "on"})
        for count in (1, 2):  # the second as read again after an abort: from the window
            await host.host.outbox.emit(command, cmd_topic("forwarder"))
            with trio.fail_after(10):
                await bus.wait_for_records(cmd_topic("echo-node"), count)
        forwarded = [decode_envelope(r.value) for r in bus.records(cmd_topic("echo-node"))]
        skipped = host.host.runtime.actors["forwarder"].duplicates_skipped
    assert [f.payload for f in forwarded] == [{"text": "on"}, {"text": "on"}]
    assert forwarded[0].envelope_id == forwarded[1].envelope_id  # one command, sent twice
    assert skipped == 1


async def test_a_workflow_snapshot_over_the_changelogs_limit_refuses_the_start() -> None:
    bus = LimitedBus(300, "signup-flow")
    async with open_test_host("runtime-dev-state", contracts=tree(SIGNUP), bus=bus) as host:
        start = await host.send("signup-flow", {"user": "ann", "amount": 50, "quantity": 2})
        answer = await host.result(start)
        handler = orchestrator_of(host, "signup-flow")
        instance = handler.state_of(str(start.correlation_id))
        await host.collector.wait_until(lambda: bool(host.dead_letters("signup-flow")))
        letters = host.dead_letters("signup-flow")
    assert answer.status is EnvelopeStatus.ERROR
    assert answer.error is not None
    assert answer.error.type == "state_too_large"
    assert "instance unchanged: keep step outputs small" in answer.error.message
    assert [d.error.type for d in letters if d.error] == ["state_too_large"]
    assert instance is None
    assert bus.records(cmd_topic("echo-node")) == []  # no step was sent


class LargeAnswers:
    """A step node's handler whose every answer is larger than a snapshot may hold."""

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        return {"blob": "x" * 4000}

    async def health_check(self) -> HandlerHealth:
        return HandlerHealth(healthy=True)

    async def aclose(self) -> None:
        pass


async def test_a_step_output_too_large_for_the_snapshot_fails_the_step_saying_why() -> None:
    """Not refused and left to time out: the step fails at once, with the reason."""
    bus = LimitedBus(3000, "signup-flow")
    async with open_test_host(
        "runtime-dev-state",
        contracts=tree(SIGNUP),
        bus=bus,
        handlers={"echo-node": LargeAnswers()},
    ) as host:
        with trio.fail_after(10):  # the hello step's timeout_s is longer than this
            answer = await host.request("signup-flow", {"user": "ann", "amount": 50})
        handler = orchestrator_of(host, "signup-flow")
        instance = handler.state_of(str(answer.correlation_id))
    assert answer.status is EnvelopeStatus.ERROR
    assert answer.error is not None
    assert answer.error.type == "workflow_failed"
    assert instance is not None
    hello = instance["steps"]["hello"]
    assert hello["status"] == "failed"
    assert hello["error"]["type"] == "state_too_large"
    assert "its output would make workflow instance" in hello["error"]["message"]
    assert "output" not in hello or hello["output"] is None


# -- a workflow as another workflow's step ----------------------------------------------


def flow(node_id: str, steps: list[dict[str, Any]], **workflow: Any) -> dict[str, Any]:
    """An orchestrator contract of ``steps``, each step's ``timeout_s`` past the tests'."""
    return {
        "kind": "orchestrator",
        "node_id": node_id,
        "version": "0.1.0",
        "workflow": {"steps": [{"timeout_s": 600, **step} for step in steps], **workflow},
    }


GREETING = flow(
    "greeting-flow",
    [{"name": "hello", "node_id": "echo-node", "payload": {"text": "'hi ' + input.user"}}],
    output={"text": "steps.hello.output.text"},
)
PAIR = flow(  # two steps of one instance start two instances of one workflow
    "pair-flow",
    [
        {"name": "first", "node_id": "greeting-flow", "payload": {"user": "input.a"}},
        {  # after the first: echo-node has answered its hello step when this one's comes
            "name": "second",
            "node_id": "greeting-flow",
            "depends_on": ["first"],
            "payload": {"user": "input.b"},
        },
    ],
    output={"both": "steps.first.output.text + ' & ' + steps.second.output.text"},
)
TOP = flow(  # three deep: top-flow -> pair-flow -> greeting-flow
    "top-flow",
    [{"name": "pair", "node_id": "pair-flow", "payload": {"a": "input.a", "b": "input.b"}}],
    output={"both": "steps.pair.output.both"},
)


async def test_a_workflow_runs_other_workflows_as_steps_each_an_instance_of_its_own() -> None:
    bus = InProcessBus(partitions=4)
    contracts = tree(GREETING, PAIR, TOP)
    async with open_test_host("runtime-dev-state", contracts=contracts, bus=bus) as host:
        with trio.fail_after(10):  # the steps' timeout_s is 600: no timer answers here
            done = await host.request("top-flow", {"a": "ann", "b": "bob"})
        top = orchestrator_of(host, "top-flow").state_of(str(done.correlation_id))
        assert top is not None
        pair_id = str(top["steps"]["pair"]["command"])
        pair = orchestrator_of(host, "pair-flow").state_of(pair_id)
        assert pair is not None
        greetings = [
            orchestrator_of(host, "greeting-flow").state_of(str(pair["steps"][name]["command"]))
            for name in ("first", "second")
        ]
        answers = host.results_of(done)
    assert done.status is EnvelopeStatus.OK
    assert done.payload == {"both": "hi ann & hi bob"}
    assert (top["status"], pair["status"]) == ("completed", "completed")
    assert [g and (g["status"], g["output"]) for g in greetings] == [
        ("completed", {"text": "hi ann"}),
        ("completed", {"text": "hi bob"}),
    ]
    # one flow, and one answer from each of the four instances
    flows = Counter(a.node_id for a in answers if a.node_id.endswith("-flow"))
    assert flows == {"top-flow": 1, "pair-flow": 1, "greeting-flow": 2}


CHARGED = flow(
    "charged-signup-flow",
    [
        {
            "name": "charge",
            "node_id": "account",
            "payload": {"account_id": "input.user", "trigger": "'deposit'", "amount": "1"},
            "compensate": {
                "node_id": "account",
                "payload": {"account_id": "input.user", "trigger": "'withdraw'", "amount": "1"},
            },
        },
        {
            "name": "signup",
            "node_id": "signup-flow",
            "depends_on": ["charge"],
            "payload": {"user": "input.user", "amount": "10", "quantity": "input.quantity"},
        },
    ],
    output={"signup": "steps.signup.output"},
    on_failure="compensate",
)


async def test_a_workflow_step_that_fails_fails_the_workflow_that_started_it() -> None:
    bus = InProcessBus(partitions=4)
    contracts = tree(SIGNUP, CHARGED)
    async with open_test_host("runtime-dev-state", contracts=contracts, bus=bus) as host:
        with trio.fail_after(10):
            # quantity "x": signup-flow's quote fails and it compensates its deposit
            failed = await host.request("charged-signup-flow", {"user": "cy", "quantity": "x"})
        outer = orchestrator_of(host, "charged-signup-flow").state_of(str(failed.correlation_id))
        assert outer is not None
        inner = orchestrator_of(host, "signup-flow").state_of(
            str(outer["steps"]["signup"]["command"])
        )
        balance = reducer_of(host, "account").state_of("cy")
    assert failed.error is not None
    assert failed.error.type == "workflow_failed"
    assert "step 'signup' failed" in failed.error.message
    assert failed.payload["status"] == "compensated"
    assert outer["steps"]["signup"]["error"]["type"] == "workflow_failed"
    assert inner is not None
    assert inner["status"] == "compensated"
    assert balance is not None
    assert balance["balance"] == 0  # 1 and 10 deposited, each withdrawn by its workflow


async def test_a_result_for_an_orchestrator_the_tree_lacks_is_answered_and_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A command naming an unknown orchestrator (another runtime's tree, say) is answered
    on the node's evt topic; the copy that would time its step out is named in the log."""
    bus = InProcessBus(partitions=4)
    async with open_test_host("runtime-dev-state", contracts=tree(), bus=bus) as host:
        answers = [
            await host.request("echo-node", {"n": n}, headers={REPLY_TO_HEADER: "ghost-flow"})
            for n in range(3)
        ]
    assert [a.payload for a in answers] == [{"n": n} for n in range(3)]
    said = [r.getMessage() for r in caplog.records if "ghost-flow" in r.getMessage()]
    assert len(said) == 1
    assert "no orchestrator of this runtime's contract tree" in said[0]
    assert "onex.app.local.global.evt.node.echo-node.v1 only" in said[0]


async def test_step_results_land_in_their_instances_partition_even_from_a_rekeying_reducer() -> (
    None
):
    """The account reducer sends each step command on to its key's partition, so its
    result carries that key; the copy for the workflow is keyed by the instance all the
    same, and lands where the instance is, with no hop more."""
    bus = InProcessBus(partitions=4)
    async with open_test_host("runtime-dev-state", contracts=tree(SIGNUP), bus=bus) as host:
        for user in ("ann", "bob", "cy", "di", "eve", "fay"):
            flow = uuid.uuid5(uuid.NAMESPACE_URL, f"flow-{user}")  # the same partitions each run
            payload: dict[str, JsonValue] = {"user": user, "amount": 5, "quantity": 1}
            done = await host.request("signup-flow", payload, correlation_id=flow)
            assert done.status is EnvelopeStatus.OK
        rekeyed_by_account = reducer_of(host, "account").rekeyed
        rekeyed_by_flow = orchestrator_of(host, "signup-flow").rekeyed
    assert rekeyed_by_account > 0  # the step commands are keyed by instance, not account
    assert rekeyed_by_flow == 0


async def test_the_embedding_api_keys_a_command_where_its_state_lives() -> None:
    bus = InProcessBus(partitions=4)
    async with open_test_host("runtime-dev-state", contracts=tree(SIGNUP), bus=bus) as host:
        deposit = {"trigger": "deposit", "amount": 1}
        sent = [await host.send("account", {"account_id": f"a{i}", **deposit}) for i in range(8)]
        for command in sent:
            await host.result(command)
        keyless = await host.request("account", {"amount": 1})  # answered with bad_key
        rekeyed = reducer_of(host, "account").rekeyed
        start = await host.send("signup-flow", {"user": "ann", "amount": 5, "quantity": 1})
        await host.result(start)
        echo = await host.send("echo-node", {})
    assert [c.headers[PARTITION_KEY_HEADER] for c in sent] == [f"global/a{i}" for i in range(8)]
    assert rekeyed == 0
    assert keyless.error is not None
    assert keyless.error.type == "bad_key"
    assert start.headers[PARTITION_KEY_HEADER] == f"global/{start.correlation_id}"
    assert PARTITION_KEY_HEADER not in echo.headers
