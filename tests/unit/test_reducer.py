"""A reducer's decision, pure: transitions, guards, errors, and folding a redelivered stream.

The property: a partition's commands read any number of times from any earlier offset
(a crash before the commit, a rebalance) and sent twice by their producer give every key
the state of one clean pass over the distinct commands, as a plain Python fold computes it.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onex_actors.core import (
    EXPIRE_TIMER,
    ContractError,
    HandlerError,
    KeyState,
    OnexEnvelope,
    ReduceContext,
    Reducer,
    ReducerContract,
    new_command,
    parse_contract,
    timer_command,
)

ACCOUNT: dict[str, Any] = {
    "kind": "reducer",
    "node_id": "account",
    "version": "0.1.0",
    "key": "input.account_id",
    "state": {"initial": {"balance": 0}},
    "fsm": {
        "states": ["open", "frozen", "closed"],
        "initial_state": "open",
        "terminal_states": ["closed"],
        "transitions": [
            {
                "transition_name": "deposit",
                "from_state": "open",
                "to_state": "open",
                "trigger": "deposit",
                "guard": "input.amount > 0",
                "assign": {"balance": "state.balance + input.amount"},
            },
            {
                "transition_name": "withdraw",
                "from_state": "open",
                "to_state": "open",
                "trigger": "withdraw",
                "guard": "state.balance >= input.amount",
                "assign": {"balance": "state.balance - input.amount"},
            },
            {
                "transition_name": "freeze",
                "from_state": "open",
                "to_state": "frozen",
                "trigger": "freeze",
            },
            {
                "transition_name": "unfreeze",
                "from_state": "frozen",
                "to_state": "open",
                "trigger": "unfreeze",
            },
            {
                "transition_name": "close",
                "from_state": "*",
                "to_state": "closed",
                "trigger": "close",
                "intents": [
                    {"node_id": "notify", "payload": {"account": "key", "balance": "state.balance"}}
                ],
            },
        ],
    },
}
LEDGER: dict[str, Any] = {
    "kind": "reducer",
    "node_id": "ledger",
    "version": "0.1.0",
    "key": "input.k",
    "state": {"initial": {"total": 0, "seen": []}},
    "fold": {"assign": {"total": "state.total + input.n", "seen": "state.seen + [input.n]"}},
}


def reducer(document: dict[str, Any]) -> Reducer:
    contract = parse_contract(document, source="x.yaml")
    assert isinstance(contract, ReducerContract)
    return Reducer(contract)


def run(r: Reducer, payloads: list[dict[str, Any]]) -> list[Any]:
    state: KeyState | None = None
    seen = []
    for offset, payload in enumerate(payloads):
        command = new_command(r.node_id, {"account_id": "a", **payload})
        decision = r.decide(state, command, ReduceContext(0, offset), r.key_of(command))
        state = decision.state
        seen.append(decision)
    return seen


def test_a_field_state_initial_gained_takes_its_default_in_keys_written_before() -> None:
    """A contract's next version adds a field: its keys' older states read its default."""
    first = reducer(LEDGER)
    command = new_command("ledger", {"k": "a", "n": 3})
    old = first.decide(None, command, ReduceContext(0, 0), "a").state
    assert old is not None
    assert old.value == {"total": 3, "seen": [3]}
    later = copy.deepcopy(LEDGER)
    later["state"]["initial"]["fee"] = 1
    later["fold"]["assign"]["total"] = "state.total + input.n - state.fee"
    again = new_command("ledger", {"k": "a", "n": 5})
    decided = reducer(later).decide(old, again, ReduceContext(0, 1), "a")
    assert decided.error is None
    assert decided.state is not None
    assert decided.state.value == {"total": 7, "seen": [3, 5], "fee": 1}  # written with it


def test_a_key_in_a_state_the_machine_no_longer_has_is_told_so() -> None:
    first = reducer(ACCOUNT)
    frozen = run(first, [{"trigger": "freeze"}])[-1].state
    assert frozen is not None
    later = copy.deepcopy(ACCOUNT)
    fsm = later["fsm"]
    fsm["states"].remove("frozen")
    fsm["transitions"] = [
        t for t in fsm["transitions"] if "frozen" not in (t["to_state"], t["from_state"])
    ]
    fsm.pop("timeouts", None)
    command = new_command("account", {"account_id": "a", "trigger": "deposit", "amount": 1})
    refused = reducer(later).decide(frozen, command, ReduceContext(0, 1), "a")
    assert refused.error is not None
    assert str(refused.error) == (
        "node 'account': state 'frozen' has no transition on trigger 'deposit' (it is not in "
        "fsm.states, a state an earlier version of the contract had: add it back, with the "
        "transitions that leave it); state unchanged"
    )


def test_a_machine_takes_transitions_and_refuses_with_state_unchanged() -> None:
    r = reducer(ACCOUNT)
    d = run(
        r,
        [
            {"trigger": "deposit", "amount": 50},
            {"trigger": "withdraw", "amount": 80},
            {"trigger": "freeze"},
            {"trigger": "deposit", "amount": 5},
            {"trigger": "explode"},
            {"trigger": "close"},
            {"trigger": "close"},
        ],
    )
    assert d[0].answer == {
        "transition": "deposit",
        "from": "open",
        "to": "open",
        "key": "a",
        "state": {"balance": 50, "status": "open"},
    }
    assert d[1].error is not None
    assert d[1].error.error_type == "guard_rejected"
    assert "refused by the guard of withdraw (state.balance >= input.amount)" in str(d[1].error)
    assert d[1].state == d[0].state
    assert not d[1].changed
    assert d[2].state.value == {"balance": 50, "status": "frozen"}
    assert d[3].error is not None
    assert d[3].error.error_type == "no_transition"
    assert "state 'frozen' has no transition on trigger 'deposit' (it takes close, unfreeze)" in (
        str(d[3].error)
    )
    assert d[4].error is not None
    assert d[4].error.error_type == "no_transition"
    assert d[5].state.value == {"balance": 50, "status": "closed"}
    (intent,) = d[5].intents
    assert (intent.node_id, intent.payload) == ("notify", {"account": "a", "balance": 50})
    assert "it is terminal" in str(d[6].error)


def test_run_time_expression_failures_and_bad_keys_leave_the_state() -> None:
    r = reducer(ACCOUNT)
    (missing,) = run(r, [{"trigger": "deposit"}])
    assert missing.error is not None
    assert missing.error.error_type == "expression_failed"
    assert "fsm.transitions.0.guard: 'input.amount > 0' failed" in str(missing.error)
    assert missing.state.value == {"balance": 0, "status": "open"}
    for payload in [{}, {"account_id": ""}, {"account_id": [1]}, {"account_id": True}]:
        with pytest.raises(HandlerError) as info:
            r.key_of(new_command("account", payload))
        assert info.value.error_type == "bad_key"
    assert r.key_of(new_command("account", {"account_id": 7})) == "7"


def test_outputs_are_the_same_bytes_when_a_command_is_decided_again() -> None:
    r = reducer(ACCOUNT)
    opened = run(r, [{"trigger": "deposit", "amount": 5}])[0].state
    command = new_command("account", {"account_id": "a", "trigger": "close"})
    first = r.decide(opened, command, ReduceContext(0, 9), "a")
    again = r.decide(opened, command, ReduceContext(0, 9), "a")
    assert first == again
    assert first.intents[0].envelope_id == uuid.uuid5(command.envelope_id, "intent:0:notify")
    assert first.intents[0].created_at == command.created_at


def test_a_state_past_its_size_limit_is_refused() -> None:
    document = {**LEDGER, "state": {**LEDGER["state"], "max_bytes": 40}}
    r = reducer(document)
    state = None
    for n in range(10):
        command = new_command("ledger", {"k": "x", "n": 1000 + n})
        decision = r.decide(state, command, ReduceContext(0, n), "x")
        if decision.error is not None:
            break
        state = decision.state
    assert decision.error is not None
    assert decision.error.error_type == "state_too_large"
    assert state is not None
    assert decision.state == state


def test_a_key_idle_past_its_ttl_starts_again_from_initial() -> None:
    r = reducer({**LEDGER, "state": {**LEDGER["state"], "ttl_s": 60}})
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def at(seconds: int, n: int, state: KeyState | None, offset: int) -> KeyState:
        command = new_command(
            "ledger", {"k": "x", "n": n}, created_at=start + timedelta(seconds=seconds)
        )
        return r.decide(state, command, ReduceContext(0, offset), "x").state

    state = at(0, 1, None, 0)
    state = at(30, 2, state, 1)
    assert state.value["total"] == 3
    state = at(200, 5, state, 2)
    assert state.value == {"total": 5, "seen": [5]}


def test_the_expire_timer_deletes_a_key_only_at_the_end_of_its_ttl() -> None:
    r = reducer({**LEDGER, "state": {**LEDGER["state"], "ttl_s": 60}})
    start = datetime(2026, 1, 1, tzinfo=UTC)
    first = new_command("ledger", {"k": "x", "n": 1}, created_at=start)
    state = r.decide(None, first, ReduceContext(0, 0), "x").state
    assert state is not None
    expires = r.expires_at(state)
    assert expires == (start + timedelta(seconds=60)).isoformat()
    later = new_command("ledger", {"k": "x", "n": 2}, created_at=start + timedelta(seconds=30))
    renewed = r.decide(state, later, ReduceContext(0, 1), "x").state
    assert renewed is not None
    old = timer_command("ledger", "global", "x", expires, timer=EXPIRE_TIMER)
    assert old.envelope_id != timer_command("ledger", "global", "x", expires).envelope_id
    kept = r.decide(renewed, old, ReduceContext(0, 2), "x")  # it changed since: stale
    assert (kept.changed, kept.state) == (False, renewed)
    assert kept.answer == {"key": "x", "state": renewed.value, "stale_timer": True}
    due = timer_command("ledger", "global", "x", r.expires_at(renewed) or "", timer=EXPIRE_TIMER)
    deleted = r.decide(renewed, due, ReduceContext(0, 3), "x")
    assert (deleted.changed, deleted.state) == (True, None)
    assert deleted.answer == {"key": "x", "state": None, "expired": True}
    again = r.decide(None, due, ReduceContext(0, 4), "x")  # fired again after a restart
    assert (again.changed, again.state) == (False, None)


# -- the property ---------------------------------------------------------------------


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[OnexEnvelope], list[int]]:
    """A partition's log (some commands sent twice, close together) and the read order."""
    count = draw(st.integers(1, 80))
    keys = draw(st.lists(st.sampled_from("ab"), min_size=count, max_size=count))
    numbers = draw(st.lists(st.integers(-5, 20), min_size=count, max_size=count))
    log = [
        new_command("ledger", {"k": k, "n": n}, envelope_id=uuid.UUID(int=i + 1))
        for i, (k, n) in enumerate(zip(keys, numbers, strict=True))
    ]
    for _ in range(draw(st.integers(0, 5))):  # a producer's retry: the same envelope again
        index = draw(st.integers(0, len(log) - 1))
        later = min(len(log), index + 1 + draw(st.integers(0, 5)))
        log.insert(later, log[index])
    # reads: from the start; at each crash, from the last commit again (at least once:
    # the commit may lag what was read and folded); finally to the end
    reads: list[int] = []
    next_read = committed = 0
    for _ in range(draw(st.integers(0, 6))):
        upto = draw(st.integers(next_read, len(log)))
        reads += range(next_read, upto)
        committed = draw(st.integers(committed, upto))
        next_read = committed
    reads += range(next_read, len(log))
    return log, reads


@settings(max_examples=300)
@given(deliveries())
def test_redeliveries_and_duplicates_fold_to_the_state_of_one_clean_pass(
    delivery: tuple[list[OnexEnvelope], list[int]],
) -> None:
    log, reads = delivery
    r = reducer(LEDGER)
    states: dict[str, KeyState] = {}
    for offset in reads:
        command = log[offset]
        key = r.key_of(command)
        decision = r.decide(states.get(key), command, ReduceContext(0, offset), key)
        assert decision.error is None
        states[key] = decision.state
    expected: dict[str, dict[str, Any]] = {}
    folded: set[uuid.UUID] = set()
    for command in log:  # the model: each distinct command once, in log order
        if command.envelope_id in folded:
            continue
        folded.add(command.envelope_id)
        k, n = command.payload["k"], command.payload["n"]
        before = expected.get(str(k), {"total": 0, "seen": []})
        expected[str(k)] = {"total": before["total"] + n, "seen": [*before["seen"], n]}
    assert {k: dict(s.value) for k, s in states.items()} == expected


# -- timeouts ---------------------------------------------------------------------------

PARKING: dict[str, Any] = {
    "kind": "reducer",
    "node_id": "parking",
    "version": "0.1.0",
    "key": "input.car",
    "fsm": {
        "states": ["idle", "parked", "towed"],
        "initial_state": "idle",
        "timeouts": {"parked": 60},
        "transitions": [
            {
                "transition_name": "park",
                "from_state": ["idle", "parked"],
                "to_state": "parked",
                "trigger": "park",
            },
            {
                "transition_name": "leave",
                "from_state": "parked",
                "to_state": "idle",
                "trigger": "leave",
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


def test_a_timeout_its_guard_declines_is_spent_not_an_error() -> None:
    """As XState's delayed transitions: the guard says no, so the key stays, once."""
    guarded = copy.deepcopy(PARKING)
    guarded["state"] = {"initial": {"paid": True}}
    guarded["fsm"]["transitions"][2]["guard"] = "!state.paid"
    r = reducer(guarded)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    park = new_command("parking", {"car": "c1", "trigger": "park"}, created_at=start)
    parked = r.decide(None, park, ReduceContext(0, 0), "c1").state
    assert parked is not None
    assert parked.deadline is not None
    due = timer_command("parking", "global", "c1", parked.deadline)
    declined = r.decide(parked, due, ReduceContext(0, 1), "c1")
    assert declined.error is None
    assert declined.answer == {
        "key": "c1",
        "state": {"paid": True, "status": "parked"},
        "timeout_declined": "tow (!state.paid)",
    }
    assert declined.changed  # written: its deadline is gone, so no restart fires it again
    assert declined.state is not None
    assert (declined.state.value, declined.state.deadline) == (parked.value, None)
    assert declined.state.changed_at == parked.changed_at  # its value did not change
    assert not r.decide(declined.state, due, ReduceContext(0, 2), "c1").changed
    # a command its guards refuse is still an error: it came from outside
    tow = new_command("parking", {"car": "c2", "trigger": "timeout"}, created_at=start)
    refused = r.decide(parked, tow, ReduceContext(0, 3), "c2")
    assert refused.error is not None
    assert refused.error.error_type == "guard_rejected"


def test_a_state_with_a_timeout_needs_a_timeout_transition() -> None:
    document = {**PARKING, "fsm": {**PARKING["fsm"], "timeouts": {"idle": 5, "nowhere": 1}}}
    with pytest.raises(ContractError) as info:
        parse_contract(document, source="x.yaml")
    idle, nowhere, *_ = info.value.problems  # one a line
    assert "fsm.timeouts.idle: no transition leaves 'idle' on trigger 'timeout'" in idle
    assert "fsm.timeouts.nowhere: 'nowhere' is not in fsm.states" in nowhere


def test_entering_a_state_sets_its_deadline_and_the_timer_takes_the_timeout_once() -> None:
    r = reducer(PARKING)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    park = new_command("parking", {"car": "c1", "trigger": "park"}, created_at=start)
    parked = r.decide(None, park, ReduceContext(0, 0), "c1").state
    assert parked.deadline == (start + timedelta(seconds=60)).isoformat()
    again = new_command(
        "parking", {"car": "c1", "trigger": "park"}, created_at=start + timedelta(seconds=30)
    )
    reparked = r.decide(parked, again, ReduceContext(0, 1), "c1").state
    assert reparked.deadline == (start + timedelta(seconds=90)).isoformat()  # restarted
    old = timer_command("parking", "global", "c1", parked.deadline)
    assert r.key_of(old) == "c1"
    stale = r.decide(reparked, old, ReduceContext(0, 2), "c1")
    assert stale.answer is not None
    assert stale.answer["stale_timer"] is True
    assert not stale.changed
    due = timer_command("parking", "global", "c1", reparked.deadline)
    assert (
        due.envelope_id == timer_command("parking", "global", "c1", reparked.deadline).envelope_id
    )
    towed = r.decide(reparked, due, ReduceContext(0, 3), "c1")
    assert towed.answer is not None
    assert (towed.answer["transition"], towed.state.value["status"]) == ("tow", "towed")
    assert towed.state.deadline is None
    assert towed.state.changed_at == reparked.deadline  # the timer's time is its deadline
    twice = r.decide(towed.state, due, ReduceContext(0, 4), "c1")
    assert not twice.changed  # the same timer again (a restart fired it anew): once
