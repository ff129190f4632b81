"""Compute and reducer contracts are checked at load: CEL compiled and typed, machines sound."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from onex_actors.core import (
    ComputeContract,
    ContractError,
    ExpressionFailed,
    ReducerContract,
    parse_contract,
)
from onex_actors.core._cel import (
    COMPUTE_VARIABLES,
    REDUCER_VARIABLES,
    CelExpression,
    _holds_nul,
    compile_expression,
)


def problems_of(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ContractError) as info:
        parse_contract(document, source="contracts/nodes/x.yaml")
    return info.value.problems


def compute(**section: Any) -> dict[str, Any]:
    return {"kind": "compute", "node_id": "x", "version": "0.1.0", "compute": section}


def machine(**fsm: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "states": ["open", "frozen", "closed"],
        "initial_state": "open",
        "terminal_states": ["closed"],
        "transitions": [
            {
                "transition_name": "freeze",
                "from_state": "open",
                "to_state": "frozen",
                "trigger": "freeze",
            },
            {
                "transition_name": "close",
                "from_state": "*",
                "to_state": "closed",
                "trigger": "close",
            },
        ],
    }
    return {
        "kind": "reducer",
        "node_id": "x",
        "version": "0.1.0",
        "key": "input.id",
        "fsm": {**base, **fsm},
    }


def test_a_compute_contract_compiles_its_fields() -> None:
    contract = parse_contract(compute(output={"twice": "input.n * 2"}), source="x.yaml")
    assert isinstance(contract, ComputeContract)
    assert contract.concurrency == 1
    assert set(contract.compute.expressions) == {"twice"}


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("state.n", "undeclared reference to 'state.n'"),
        ("inpt.n", "undeclared reference to 'inpt.n'"),
        ("1 + 'a'", "no matching overload for '_+_' applied to '(int, string)'"),
        ("input.n +", "Syntax error"),
        ("sizee(input.n)", "undeclared reference to 'sizee'"),
    ],
)
def test_an_expression_that_cannot_run_is_one_error_naming_file_and_key(
    source: str, said: str
) -> None:
    (problem,) = problems_of(compute(output={"total": source}))
    assert problem.startswith("contracts/nodes/x.yaml: key 'compute.output': ")
    assert "compute.output.total:" in problem
    assert said in problem
    assert "\n" not in problem


def test_a_compute_section_has_output_or_function_not_both() -> None:
    (both,) = problems_of(compute(output={"a": "1"}, function="m.n:f"))
    (neither,) = problems_of(compute())
    assert "either 'output' or 'function', not both" in both
    assert "either 'output' or 'function', not both" in neither
    (bad,) = problems_of(compute(function="not a function"))
    assert "must name a function as package.module:function" in bad


def test_run_time_failures_are_errors_naming_the_key_not_crashes() -> None:
    expression = compile_expression("input.a / input.b", "compute.output.q", COMPUTE_VARIABLES)
    assert expression.evaluate({"input": {"a": 6, "b": 3}}) == 2
    for payload, said in [
        ({"a": 1, "b": 0}, "divide by zero"),
        ({"a": 1}, "Key not found"),
        ({"a": 1, "b": "x"}, "No matching overloads"),
        ({"a": 1.5, "b": 1}, "No matching overloads"),
    ]:
        with pytest.raises(ExpressionFailed, match=said) as info:
            expression.evaluate({"input": payload})
        assert str(info.value).startswith("compute.output.q: 'input.a / input.b' failed:")


def test_values_come_back_as_json() -> None:
    expression = compile_expression(
        "{'t': timestamp('2026-01-01T00:00:00Z'), 'd': duration('90s'), 'l': [1, 2.5, null]}",
        "compute.output.v",
        COMPUTE_VARIABLES,
    )
    assert expression.evaluate({}) == {
        "t": "2026-01-01T00:00:00+00:00",
        "d": 90.0,
        "l": [1, 2.5, None],
    }
    with pytest.raises(ExpressionFailed, match="JSON keys are text"):
        compile_expression("{1: 2}", "k", COMPUTE_VARIABLES).evaluate({})
    with pytest.raises(ExpressionFailed, match="not true or false"):
        compile_expression("1", "guard", COMPUTE_VARIABLES).test({})


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("double(input.a) / 0.0", "gave inf"),
        ("0.0 / 0.0", "gave nan"),
        ("-1e308 * 10.0", "gave -inf"),
    ],
)
def test_a_double_json_cannot_hold_is_a_failure_not_a_null(source: str, said: str) -> None:
    expression = compile_expression(source, "fold.assign.v", REDUCER_VARIABLES)
    with pytest.raises(ExpressionFailed, match=f"fold.assign.v: .* {said} .*JSON cannot hold"):
        expression.evaluate({"input": {"a": 1}})
    inside = compile_expression("{'l': [1.0 / 0.0]}", "compute.output.v", COMPUTE_VARIABLES)
    with pytest.raises(ExpressionFailed, match="gave inf"):
        inside.evaluate({})


def test_an_initial_state_json_cannot_hold_is_refused_at_load() -> None:
    document = {
        "kind": "reducer",
        "node_id": "infinite",
        "version": "0.1.0",
        "key": "input.k",
        "state": {"initial": {"v": [0, math.inf]}},
        "fold": {"assign": {"v": "state.v"}},
    }
    with pytest.raises(ContractError, match=r"state.initial.v\[1\] is NaN or infinite"):
        parse_contract(document, source="nodes/infinite.yaml")


def test_a_sound_machine_loads() -> None:
    contract = parse_contract(machine(), source="x.yaml")
    assert isinstance(contract, ReducerContract)
    assert contract.fsm is not None
    by_slot = contract.fsm.by_state_and_trigger
    assert [t.transition_name for t in by_slot[("frozen", "close")]] == ["close"]
    assert ("closed", "close") not in by_slot  # "*" spares terminal states


def test_unknown_states_are_named_with_their_key() -> None:
    transitions = [
        {"transition_name": "go", "from_state": "open", "to_state": "nowhere", "trigger": "go"},
        {"transition_name": "back", "from_state": "limbo", "to_state": "open", "trigger": "b"},
    ]
    problems = problems_of(
        machine(initial_state="start", terminal_states=["end"], transitions=transitions)
    )
    said = [
        "fsm.initial_state: 'start' is not in fsm.states",
        "fsm.terminal_states: 'end' is not in fsm.states",
        "fsm.transitions.1 (back).from_state: 'limbo' is not in fsm.states",
        "fsm.transitions.0 (go).to_state: 'nowhere' is not in fsm.states",
    ]
    assert len(problems) == len(said)  # one a line, each with the file and key
    for problem in problems:
        assert problem.startswith("contracts/nodes/x.yaml: key 'fsm': fsm.")
        assert any(s in problem for s in said), problem


def test_a_guard_that_does_not_compile_hides_none_of_the_machines_other_problems() -> None:
    transitions = [
        {"transition_name": "go", "from_state": "open", "to_state": "nowhere", "trigger": "go"},
        {
            "transition_name": "pay",
            "from_state": "open",
            "to_state": "open",
            "trigger": "pay",
            "guard": "input.amount > > 0",
            "assign": {"paid": "state.paid +"},
        },
    ]
    problems = problems_of(machine(transitions=transitions))
    assert [p.split(": ", 3)[2] for p in problems] == [
        "fsm.transitions.0 (go).to_state",
        "fsm.transitions.1 (pay).guard",
        "fsm.transitions.1 (pay).assign.paid",
    ]
    assert "'input.amount > > 0' is not a valid CEL expression" in problems[1]


def test_unreachable_states_are_refused() -> None:
    (problem,) = problems_of(machine(states=["open", "frozen", "closed", "archived"]))
    assert "'archived' cannot be reached from 'open'" in problem


def test_two_transitions_of_one_state_on_one_trigger_need_different_priorities() -> None:
    doubled = [
        {"transition_name": "a", "from_state": "open", "to_state": "frozen", "trigger": "t"},
        {"transition_name": "b", "from_state": "*", "to_state": "closed", "trigger": "t"},
    ]
    (problem,) = problems_of(machine(transitions=doubled))
    assert "transitions 'a' and 'b' both leave 'open' on trigger 't' at priority 0" in problem
    doubled[1]["priority"] = 1
    contract = parse_contract(machine(transitions=doubled), source="x.yaml")
    assert isinstance(contract, ReducerContract)
    assert contract.fsm is not None
    tried = contract.fsm.by_state_and_trigger[("open", "t")]
    assert [t.transition_name for t in tried] == ["b", "a"]


def test_nothing_leaves_a_terminal_state() -> None:
    leaving = machine()["fsm"]["transitions"] + [
        {
            "transition_name": "reopen",
            "from_state": "closed",
            "to_state": "open",
            "trigger": "reopen",
        }
    ]
    (problem,) = problems_of(machine(transitions=leaving))
    assert "'closed' is terminal, so nothing leaves it" in problem


def test_a_reducer_has_fsm_or_fold_and_a_key_that_compiles() -> None:
    document = machine()
    document["fold"] = {"assign": {"n": "state.n + 1"}}
    (both,) = problems_of(document)
    assert "either an 'fsm' or a 'fold' section, not both" in both
    document = machine()
    document["key"] = "input.id +"
    (key,) = problems_of(document)
    assert "key 'key': key: 'input.id +' is not a valid CEL expression" in key
    document = machine()
    document["concurrency"] = 4
    (workers,) = problems_of(document)
    assert "concurrency" in workers


def test_a_keyed_node_cannot_be_fan_out_but_a_compute_node_can() -> None:
    # every runtime hosting a fan_out node answers every command: for a reducer that is
    # two writers of one state topic
    (fanned,) = problems_of({**machine(), "fan_out": True})
    assert "key 'fan_out': a reducer cannot be fan_out: its state lives in one" in fanned
    workflow = {
        "kind": "orchestrator",
        "node_id": "flow",
        "version": "0.1.0",
        "fan_out": True,
        "workflow": {"steps": [{"name": "one", "node_id": "echo-node"}]},
    }
    (fanned,) = problems_of(workflow)
    assert "key 'fan_out': an orchestrator cannot be fan_out" in fanned
    stateless = parse_contract({**compute(output={"a": "1"}), "fan_out": True}, source="<t>")
    assert stateless.fan_out


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"retry": {"max_attempts": 5}}, "retry: "),
        ({"timeout_s": 5, "idempotency_window_s": 60}, "timeout_s, idempotency_window_s: "),
    ],
)
def test_an_effects_handler_settings_on_a_pure_node_are_refused(
    settings: dict[str, Any], named: str
) -> None:
    # a pure node's decisions are never timed, retried or remembered: the settings
    # would do nothing, and a user setting retry expects a failing function retried
    for document in (machine(), compute(output={"a": "1"})):
        (refused,) = problems_of({**document, **settings})
        kind = document["kind"]
        assert f"{named}a {kind} node's decisions are not timed, retried" in refused


def folding(assign: dict[str, str], **more: Any) -> dict[str, Any]:
    return {
        "kind": "reducer",
        "node_id": "x",
        "version": "0.1.0",
        "key": "input.id",
        "state": {"initial": {"orders": 0, "total": 0}},
        "fold": {"assign": assign, **more},
    }


def test_a_state_field_no_state_has_is_refused_at_load_naming_the_key() -> None:
    (typo,) = problems_of(folding({"total": "state.totl + input.amount"}))
    assert typo.endswith(
        "fold.assign.total: 'state.totl + input.amount' reads state.totl, a field no state "
        "of this reducer has (state.initial and the assignments give orders, total); check "
        "its spelling, or add it to state.initial"
    )
    in_an_intent = folding(
        {"orders": "state.orders + 1"},
        intents=[{"node_id": "echo-node", "payload": {"n": "state.order"}}],
    )
    (intent,) = problems_of(in_an_intent)
    assert "fold.intents.0.payload.n: 'state.order' reads state.order" in intent
    guarded = machine()
    guarded["fsm"]["transitions"][0]["guard"] = "state.balanse > 0"
    (guard,) = problems_of(guarded)
    assert "fsm.transitions.0.guard: 'state.balanse > 0' reads state.balanse" in guard


@pytest.mark.parametrize(
    "source",
    [
        "state.orders + 1",  # in state.initial
        "state.seen + 1",  # written by an assignment (its first read fails until then)
        "has(state.legacy) ? state.orders + 1 : 0",  # what an earlier version wrote
        "state.orders + size('state.nope') + size(\"state.nope\")",  # text, not a field
        "input.state.nope + state.orders",  # another variable's field
    ],
)
def test_fields_a_state_can_have_and_what_only_looks_like_one_load(source: str) -> None:
    contract = parse_contract(folding({"orders": source, "seen": "1"}), source="x.yaml")
    assert isinstance(contract, ReducerContract)
    with_machine = machine()
    with_machine["fsm"]["transitions"][0]["guard"] = "state.status == 'open'"
    assert isinstance(parse_contract(with_machine, source="x.yaml"), ReducerContract)


def test_an_assignment_to_the_machines_state_field_is_refused() -> None:
    """The machine sets it from to_state after the assignments: one would be overwritten."""
    document = machine()
    document["fsm"]["transitions"][0]["assign"] = {"status": "'closed'"}
    (problem,) = problems_of(document)
    name = document["fsm"]["transitions"][0]["transition_name"]
    to_state = document["fsm"]["transitions"][0]["to_state"]
    assert (
        f"fsm.transitions.0 ({name}).assign.status: 'status' is the machine's state_field, "
        f"which the transition's to_state sets ({to_state!r}); drop this assignment"
    ) in problem


def test_the_initial_state_field_is_the_machines_initial_state() -> None:
    document = machine()
    document["state"] = {"initial": {"status": "frozen"}}
    (problem,) = problems_of(document)
    assert "state.initial.status is 'frozen' but fsm.initial_state is 'open'" in problem


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=5)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abk"), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300)
@given(
    st.dictionaries(st.sampled_from("abk"), JSON_VALUES, max_size=3),
    st.sampled_from(["input.k", "input.a.b", "input.a.k.b"]),
)
def test_a_field_path_gives_what_cel_gives(payload: dict[str, Any], source: str) -> None:
    assume(not _holds_nul(payload))  # refused whole by the runtime: the test below
    fast = compile_expression(source, "key", COMPUTE_VARIABLES)
    assert fast.path is not None
    slow = attrs.evolve(fast, path=None)

    def outcome(expression: CelExpression) -> object:
        try:
            return ("ok", expression.evaluate({"input": payload}))
        except ExpressionFailed:
            return "failed"

    assert outcome(fast) == outcome(slow)


NUMBERS = (
    st.integers(-(2**63), 2**63 - 1)
    | st.sampled_from([2**63 - 1, -(2**63), 2**63, 2**64, -(2**63) - 1, 0, 1, -1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
    | st.text(max_size=3)
)


@settings(max_examples=500)
@given(
    st.dictionaries(st.sampled_from("ab"), NUMBERS, max_size=2),
    st.sampled_from(
        [
            *("input.a + 1", "input.a - 1", "input.a + input.b", "input.a-input.b"),
            *("7 - input.b", "input.a + 9223372036854775807", "0 - input.a", "input.a.b + 1"),
        ]
    ),
)
def test_a_sum_of_integers_gives_what_cel_gives(payload: dict[str, Any], source: str) -> None:
    """``state.count + 1`` is added without the CEL runtime: the same value, the same failure
    (a double, text, a missing field, an overflow of 64 bits all go to the runtime)."""
    whole = compile_expression("input", "k", COMPUTE_VARIABLES)
    try:  # a payload holding an integer past 64 bits anywhere fails CEL's conversion of
        whole.evaluate({"input": payload})  # all of it; the short way reads what it names
    except ExpressionFailed:
        assume(False)
    fast = compile_expression(source, "fold.assign.count", COMPUTE_VARIABLES)
    assert fast.sum is not None
    slow = attrs.evolve(fast, sum=None)

    def outcome(expression: CelExpression) -> object:
        try:
            value = expression.evaluate({"input": payload})
        except ExpressionFailed:
            return "failed"
        return ("ok", type(value).__name__, value)

    assert outcome(fast) == outcome(slow)


def test_only_sums_of_paths_and_integer_literals_take_the_short_way() -> None:
    for source in ("input.a * 2", "input.a + 1.5", "input.a + 'x'", "a + 1", "input.a + 01"):
        try:
            expression = compile_expression(source, "k", COMPUTE_VARIABLES)
        except ValueError:
            continue  # refused at load: nothing to run
        assert expression.sum is None, source


@pytest.mark.parametrize(
    ("source", "without_nul"), [("input.k", "ab"), ("input.k + 'x'", "abx"), ("size(input.k)", 2)]
)
def test_a_text_holding_nul_is_refused_not_cut_short(source: str, without_nul: object) -> None:
    """The CEL runtime reads a text only up to its first U+0000 (``size`` gives 1 here)."""
    expression = compile_expression(source, "fold.assign.n", COMPUTE_VARIABLES)
    assert expression.evaluate({"input": {"k": "ab"}}) == without_nul
    with pytest.raises(ExpressionFailed, match=r"fold.assign.n: .* U\+0000"):
        expression.evaluate({"input": {"k": "a\x00b"}})
