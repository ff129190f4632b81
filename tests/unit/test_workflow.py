"""The workflow core: contracts checked at load, and ``WorkflowEngine.decide`` (pure):
steps in dependency order and in parallel, retries past a timeout, failure and
compensation, and the same end whatever is delivered twice or late."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onex_actors.core import (
    INSTANCE_HEADER,
    PARTITION_KEY_HEADER,
    REPLY_TO_HEADER,
    ContractError,
    EnvelopeStatus,
    ErrorInfo,
    KeyState,
    OnexEnvelope,
    OrchestratorContract,
    ReduceContext,
    StepTiming,
    WorkflowDecision,
    WorkflowEngine,
    error_result_of,
    instance_of,
    keyed_for_instance,
    new_command,
    parse_contract,
    reply_to_of,
    result_command,
    result_of,
    timer_command,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)

GREET: dict[str, Any] = {
    "kind": "orchestrator",
    "node_id": "greet-flow",
    "version": "0.1.0",
    "workflow": {
        "steps": [
            {
                "name": "lookup",
                "node_id": "query-user",
                "payload": {"user_id": "input.user_id"},
                "timeout_s": 10,
                "retry": {"attempts": 2, "backoff_s": 1},
            },
            {
                "name": "greet",
                "node_id": "echo-node",
                "depends_on": ["lookup"],
                "payload": {"text": "'hello ' + steps.lookup.output.name"},
                "compensate": {"node_id": "echo-node", "payload": {"undo": "'greet'"}},
            },
            {
                "name": "credit",
                "node_id": "account",
                "depends_on": ["lookup"],
                "when": "steps.lookup.output.vip",
                "payload": {"account_id": "input.user_id", "amount": "10"},
            },
        ],
        "output": {
            "greeting": "steps.greet.output.text",
            "credited": "steps.credit.status == 'done'",
        },
        "on_failure": "compensate",
    },
}


def engine(document: dict[str, Any] = GREET) -> WorkflowEngine:
    contract = parse_contract(document, source="greet-flow.yaml")
    assert isinstance(contract, OrchestratorContract)
    return WorkflowEngine(contract)


def problems_of(workflow: dict[str, Any]) -> str:
    with pytest.raises(ContractError) as info:
        parse_contract({**GREET, "workflow": workflow}, source="flow.yaml")
    return "\n".join(info.value.problems)


def test_a_workflow_is_checked_at_load_naming_the_file_and_key() -> None:
    cycle = problems_of(
        {
            "steps": [
                {"name": "a", "node_id": "x", "depends_on": ["b"]},
                {"name": "b", "node_id": "x", "depends_on": ["a"]},
            ]
        }
    )
    assert "flow.yaml: key 'workflow'" in cycle
    assert "the dependencies form a cycle: a → b → a" in cycle
    assert "no step 'nope'" in problems_of(
        {"steps": [{"name": "a", "node_id": "x", "depends_on": ["nope"]}]}
    )
    unordered = problems_of(
        {
            "steps": [
                {"name": "a", "node_id": "x"},
                {"name": "b", "node_id": "x", "payload": {"v": "steps.a.output.v"}},
            ]
        }
    )
    assert "workflow.steps.1 (b).payload.v: reads steps.a" in unordered
    assert "add 'a' to depends_on" in unordered
    assert "use lowercase letters" in problems_of({"steps": [{"name": "Bad-Name", "node_id": "x"}]})
    assert "step names used twice: a" in problems_of(
        {"steps": [{"name": "a", "node_id": "x"}, {"name": "a", "node_id": "y"}]}
    )
    assert "not a valid CEL expression" in problems_of(
        {"steps": [{"name": "a", "node_id": "x", "payload": {"v": "input.("}}]}
    )
    assert "workflow.output.r: no step 'ghost'" in problems_of(
        {"steps": [{"name": "a", "node_id": "x"}], "output": {"r": "steps.ghost.output"}}
    )


def test_a_payload_that_does_not_compile_hides_none_of_the_workflows_other_problems() -> None:
    said = problems_of(
        {
            "steps": [
                {"name": "a", "node_id": "x", "payload": {"v": "input.y +"}},
                {"name": "b", "node_id": "x", "depends_on": ["c"], "when": "input.("},
            ],
            "output": {"r": "steps.a.output +"},
        }
    ).splitlines()
    assert [line.split(": ", 3)[2] for line in said] == [
        "workflow.steps.1 (b).depends_on",
        "workflow.output.r",
        "workflow.steps.0 (a).payload.v",
        "workflow.steps.1 (b).when",
    ]


def test_a_step_or_field_no_workflow_has_is_refused_at_load() -> None:
    ghost = problems_of(
        {"steps": [{"name": "a", "node_id": "x", "payload": {"v": "steps.gost.output"}}]}
    )
    assert ghost.endswith(
        "workflow.steps.0 (a).payload.v: reads steps.gost, and the workflow has no step "
        "'gost' (its steps: a)"
    )
    typo = problems_of(
        {
            "steps": [
                {"name": "a", "node_id": "x"},
                {
                    "name": "b",
                    "node_id": "x",
                    "depends_on": ["a"],
                    "payload": {"v": "steps.a.outptu.v", "ok": "'steps.a.nothing' + 'x'"},
                    "compensate": {"node_id": "x", "payload": {"w": "steps.b.eror"}},
                },
            ],
            "output": {"r": "steps.b.output.v", "n": "steps.a.atempts"},
        }
    )
    assert typo.splitlines()[-3:] == [  # one problem a line
        "flow.yaml: key 'workflow': workflow.output.n: reads steps.a.atempts; a step has "
        "output, status, attempts, error (steps.a.output.<field> for what its node answered)",
        "flow.yaml: key 'workflow': workflow.steps.1 (b).payload.v: reads steps.a.outptu; a "
        "step has output, status, attempts, error (steps.a.output.<field> for what its node "
        "answered)",
        "flow.yaml: key 'workflow': workflow.steps.1 (b).compensate.payload.w: reads "
        "steps.b.eror; a step has output, status, attempts, error (steps.b.output.<field> for "
        "what its node answered)",
    ]
    assert "nothing" not in typo  # in a text literal: not a read


class Driver:
    """Feeds an engine and keeps the instance, as the runtime's store would."""

    def __init__(self, workflow: WorkflowEngine) -> None:
        self.engine = workflow
        self.state: KeyState | None = None
        self.offset = 0
        self.answers: list[OnexEnvelope] = []
        self.sent: list[OnexEnvelope] = []

    def feed(self, command: OnexEnvelope) -> WorkflowDecision:
        decision = self.engine.decide(self.state, command, ReduceContext(0, self.offset))
        self.offset += 1
        if decision.changed:
            self.state = decision.state
        self.sent += decision.commands
        if decision.answer is not None:
            self.answers.append(decision.answer)
        return decision

    def instance(self) -> dict[str, Any]:
        assert self.state is not None
        return dict(self.state.value)


FLOW = uuid.uuid5(uuid.NAMESPACE_URL, "flow")
CALLER_INSTANCE = str(uuid.uuid5(uuid.NAMESPACE_URL, "caller-instance"))


def start(user: str = "u1", caller: str | None = None) -> OnexEnvelope:
    """The start command of ``user``'s instance (the same envelope each time).

    ``caller``: ``None``, a client's; ``"flow"``, a step of the instance of another
    workflow (``outer-flow``) started by a client; ``"nested"``, a step of an instance
    of ``outer-flow`` that a third workflow's step started.
    """
    headers = {}
    if caller == "flow":
        headers = {REPLY_TO_HEADER: "outer-flow", PARTITION_KEY_HEADER: f"global/{FLOW}"}
    elif caller == "nested":
        headers = {
            REPLY_TO_HEADER: "outer-flow",
            PARTITION_KEY_HEADER: f"global/{CALLER_INSTANCE}",
            INSTANCE_HEADER: CALLER_INSTANCE,
        }
    return new_command(
        "greet-flow",
        {"user_id": user},
        created_at=T0,
        envelope_id=uuid.uuid5(uuid.NAMESPACE_URL, f"start/{user}/{caller}"),
        correlation_id=FLOW,
        headers=headers,
    )


def answer(command: OnexEnvelope, payload: dict[str, Any], seconds: float = 1) -> OnexEnvelope:
    """A step node's ok result, brought back to the orchestrator."""
    event = result_of(command, payload).model_copy(
        update={"created_at": command.created_at + timedelta(seconds=seconds)}
    )
    return result_command("greet-flow", event)


def failure(command: OnexEnvelope, kind: str = "boom") -> OnexEnvelope:
    event = error_result_of(command, ErrorInfo(type=kind, message="it broke"))
    return result_command("greet-flow", event)


def test_steps_run_after_their_dependencies_in_parallel_and_the_workflow_answers_once() -> None:
    driver = Driver(engine())
    first = driver.feed(start())
    (lookup,) = first.commands
    assert (lookup.node_id, lookup.payload) == ("query-user", {"user_id": "u1"})
    second = driver.feed(answer(lookup, {"name": "Ann", "vip": True}))
    greet, credit = second.commands  # independent steps: sent together
    assert {greet.node_id, credit.node_id} == {"echo-node", "account"}
    assert greet.payload == {"text": "hello Ann"}
    assert greet.correlation_id == lookup.correlation_id  # one flow
    assert driver.feed(answer(greet, {"text": "hello Ann"})).answer is None
    last = driver.feed(answer(credit, {"state": {"balance": 10}}))
    assert last.answer is not None
    assert last.answer.status is EnvelopeStatus.OK
    assert last.answer.payload == {"greeting": "hello Ann", "credited": True}
    assert str(last.answer.causation_id) == driver.instance()["start"]["envelope_id"]
    assert driver.instance()["status"] == "completed"
    # a result delivered again, and the start command again, change nothing
    assert driver.feed(answer(credit, {"state": {"balance": 10}})).note == "late"
    assert driver.feed(start()).note == "duplicate"
    assert len(driver.answers) == 1
    # another start command of the same flow (correlation id) is not a duplicate: refused
    again = new_command("greet-flow", {"user_id": "u2"}, correlation_id=lookup.correlation_id)
    refused = driver.feed(again)
    assert (refused.note, refused.changed, refused.answer) == ("exists", False, None)


def test_each_ended_attempt_is_timed_from_its_command_to_its_result_or_timeout() -> None:
    driver = Driver(engine())
    (first_try,) = driver.feed(start()).commands
    timed_out = driver.feed(timer_for(driver))  # 10 s later: no result
    assert timed_out.timings == (StepTiming("lookup", "query-user", "timed_out", 10.0),)
    (second_try,) = driver.feed(timer_for(driver)).commands  # its backoff passed
    late = driver.feed(answer(first_try, {"name": "Ann", "vip": False}, seconds=12))
    assert (late.note, late.timings) == ("late", ())  # an old attempt's result: not timed
    done = driver.feed(answer(second_try, {"name": "Ann", "vip": False}, seconds=2.5))
    assert done.timings == (StepTiming("lookup", "query-user", "ok", 2.5),)
    assert driver.instance()["steps"]["lookup"]["seconds"] == 2.5  # shown by `onex state`
    (greet,) = done.commands
    failed = driver.feed(failure(greet))
    assert [(t.step, t.outcome) for t in failed.timings] == [("greet", "error")]


def test_a_step_whose_when_is_false_is_skipped_and_the_rest_goes_on() -> None:
    driver = Driver(engine())
    (lookup,) = driver.feed(start()).commands
    (greet,) = driver.feed(answer(lookup, {"name": "Bob", "vip": False})).commands
    done = driver.feed(answer(greet, {"text": "hello Bob"}))
    assert done.answer is not None
    assert done.answer.payload == {"greeting": "hello Bob", "credited": False}
    assert driver.instance()["steps"]["credit"]["status"] == "skipped"


def test_reading_a_skipped_steps_output_fails_saying_it_was_skipped() -> None:
    reads_credit = copy.deepcopy(GREET)
    reads_credit["workflow"]["output"]["credited"] = "steps.credit.output.balance"
    reads_credit["workflow"]["on_failure"] = "stop"
    driver = Driver(engine(reads_credit))
    (lookup,) = driver.feed(start()).commands
    (greet,) = driver.feed(answer(lookup, {"name": "Bob", "vip": False})).commands
    failed = driver.feed(answer(greet, {"text": "hello Bob"}))
    assert failed.answer is not None
    assert failed.answer.error is not None
    assert "workflow.output.credited: 'steps.credit.output.balance' failed" in (
        failed.answer.error.message
    )
    assert failed.answer.error.message.endswith(
        "(steps.credit was skipped, its 'when' false: a skipped step has no output; test "
        "steps.credit.status == 'done' before reading it)"
    )


def timer_for(driver: Driver) -> OnexEnvelope:
    assert driver.state is not None
    assert driver.state.deadline is not None
    started = driver.instance()["start"]
    key = started.get("instance", started["correlation_id"])
    return timer_command("greet-flow", "global", key, driver.state.deadline)


def test_a_step_past_its_timeout_is_sent_again_after_its_backoff_then_fails() -> None:
    driver = Driver(engine())
    (first_try,) = driver.feed(start()).commands
    assert driver.state is not None
    assert driver.state.deadline == (T0 + timedelta(seconds=10)).isoformat()
    assert driver.feed(timer_for(driver)).commands == ()  # timed out: waits its backoff
    (second_try,) = driver.feed(timer_for(driver)).commands
    assert second_try.envelope_id != first_try.envelope_id
    assert second_try.payload == first_try.payload
    assert driver.instance()["steps"]["lookup"]["attempts"] == 2
    # the first attempt's result, arriving now, is late: ignored and counted
    assert driver.feed(answer(first_try, {"name": "Ann", "vip": False})).note == "late"
    assert driver.instance()["late"] == 1
    ended = driver.feed(timer_for(driver))  # the last attempt timed out too
    assert ended.answer is not None
    assert ended.answer.status is EnvelopeStatus.ERROR
    assert ended.answer.error is not None
    assert "had no result after 2 attempt(s)" in ended.answer.error.message
    assert driver.instance()["status"] == "compensated"  # nothing was done to undo
    assert driver.state.deadline is None


def test_a_failed_step_compensates_the_steps_done_newest_first() -> None:
    driver = Driver(engine())
    (lookup,) = driver.feed(start()).commands
    greet, credit = driver.feed(answer(lookup, {"name": "Ann", "vip": True})).commands
    assert driver.feed(answer(greet, {"text": "hi"})).commands == ()
    undo = driver.feed(failure(credit))
    (compensation,) = undo.commands  # greet was done: undone, awaited
    assert (compensation.node_id, compensation.payload) == ("echo-node", {"undo": "greet"})
    assert driver.instance()["status"] == "compensating"
    ended = driver.feed(answer(compensation, {"undo": "greet"}))
    assert ended.answer is not None
    assert ended.answer.error is not None
    assert ended.answer.error.type == "workflow_failed"
    assert ended.answer.error.message.startswith("step 'credit' failed: boom: it broke")
    assert ended.answer.payload["status"] == "compensated"
    steps = driver.instance()["steps"]
    assert (steps["greet"]["status"], steps["credit"]["status"]) == ("compensated", "failed")


def greet_undone(**compensate: Any) -> dict[str, Any]:
    """GREET whose greet step's compensation has the settings ``compensate`` gives."""
    steps = GREET["workflow"]["steps"]
    undo = {"node_id": "echo-node", "payload": {}, **compensate}
    greet = {**steps[1], "compensate": undo}
    return {**GREET, "workflow": {**GREET["workflow"], "steps": [steps[0], greet, steps[2]]}}


def test_a_compensation_that_keeps_failing_parks_the_instance_visibly() -> None:
    driver = Driver(engine(greet_undone(attempts=2)))
    (lookup,) = driver.feed(start()).commands
    greet, credit = driver.feed(answer(lookup, {"name": "Ann", "vip": True})).commands
    driver.feed(answer(greet, {"text": "hi"}))
    (undo_1,) = driver.feed(failure(credit)).commands
    (undo_2,) = driver.feed(failure(undo_1)).commands  # retried
    assert undo_2.envelope_id != undo_1.envelope_id
    ended = driver.feed(failure(undo_2))
    assert ended.answer is not None
    assert ended.answer.error is not None
    assert ended.answer.error.type == "compensation_failed"
    assert ended.answer.error.message == "compensating step 'greet' failed: boom: it broke"
    assert driver.instance()["status"] == "compensation_failed"
    assert driver.instance()["steps"]["greet"]["status"] == "compensation_failed"


def test_each_ended_compensation_attempt_is_timed_too() -> None:
    driver = Driver(engine(greet_undone(attempts=3, timeout_s=5)))
    (lookup,) = driver.feed(start()).commands
    greet, credit = driver.feed(answer(lookup, {"name": "Ann", "vip": True})).commands
    driver.feed(answer(greet, {"text": "hi"}))
    (undo_1,) = driver.feed(failure(credit)).commands
    refused = driver.feed(failure(undo_1))
    assert [(t.step, t.node_id, t.outcome) for t in refused.timings] == [
        ("greet", "echo-node", "compensation_error")
    ]
    (undo_2,) = refused.commands  # tried again at once
    timed_out = driver.feed(timer_for(driver))  # no result in its 5 s
    assert timed_out.timings == (StepTiming("greet", "echo-node", "compensation_timed_out", 5.0),)
    (undo_3,) = timed_out.commands
    assert driver.feed(answer(undo_2, {}, seconds=6)).timings == ()  # an old attempt's
    done = driver.feed(answer(undo_3, {}, seconds=0.5))
    assert done.timings == (StepTiming("greet", "echo-node", "compensated", 0.5),)
    assert driver.instance()["steps"]["greet"]["undo_seconds"] == 0.5  # shown by `onex state`
    assert driver.instance()["status"] == "compensated"


def test_a_payload_the_start_command_cannot_fill_fails_the_workflow() -> None:
    driver = Driver(engine())
    ended = driver.feed(new_command("greet-flow", {"no_user": 1}, created_at=T0))
    assert ended.commands == ()
    assert ended.answer is not None
    assert ended.answer.error is not None
    assert ended.answer.error.type == "workflow_failed"
    assert ended.answer.error.message.startswith(
        "step 'lookup': its command to 'query-user' could not be built: "
    )
    assert "user_id" in ended.answer.error.message
    assert driver.instance()["steps"]["lookup"]["error"]["type"] == "expression_failed"


def test_deciding_again_gives_the_same_bytes() -> None:
    first, second = Driver(engine()), Driver(engine())
    command = start()
    one, two = first.feed(command), second.feed(command)
    assert [c.model_dump_json() for c in one.commands] == [
        c.model_dump_json() for c in two.commands
    ]
    assert one.state == two.state


def finish(driver: Driver, command: OnexEnvelope) -> OnexEnvelope:
    """Feed ``command`` and every result after it; return the workflow's one answer."""
    inbox = [command]
    while inbox:
        inbox += [answer(c, world(c)) for c in driver.feed(inbox.pop(0)).commands]
    (done,) = driver.answers
    return done


def test_a_workflow_started_by_another_workflows_step_is_an_instance_of_its_own() -> None:
    """Keyed by the step command's id: each step and attempt of the calling workflow starts
    its own (one flow, one correlation_id); its commands and their results say which."""
    nested = start(caller="flow")
    assert instance_of(nested) == str(nested.envelope_id)
    assert instance_of(start()) == str(FLOW)  # a client's start: its flow's instance
    driver = Driver(engine())
    (lookup,) = driver.feed(nested).commands
    assert lookup.correlation_id == FLOW
    assert lookup.headers[INSTANCE_HEADER] == str(nested.envelope_id)
    assert lookup.headers[PARTITION_KEY_HEADER] == f"global/{nested.envelope_id}"
    assert instance_of(answer(lookup, world(lookup))) == str(nested.envelope_id)
    assert instance_of(timer_for(driver)) == str(nested.envelope_id)
    assert reply_to_of(driver.instance()) == "outer-flow"
    # another step of the same calling instance starts another instance, not "exists",
    # whose commands have ids of their own (a step node's idempotency tells them apart)
    other = start("u2", caller="flow")
    assert instance_of(other) != instance_of(nested)
    (its_lookup,) = Driver(engine()).feed(other).commands
    assert its_lookup.envelope_id != lookup.envelope_id
    assert its_lookup.correlation_id == FLOW


@pytest.mark.parametrize(
    ("caller", "headers"),
    [
        (None, {}),
        ("flow", {PARTITION_KEY_HEADER: f"global/{FLOW}"}),
        (
            "nested",
            {PARTITION_KEY_HEADER: f"global/{CALLER_INSTANCE}", INSTANCE_HEADER: CALLER_INSTANCE},
        ),
    ],
)
def test_the_answer_is_keyed_to_the_instance_whose_step_started_the_workflow(
    caller: str | None, headers: dict[str, str]
) -> None:
    command = start(caller=caller)
    driver = Driver(engine())
    done = finish(driver, command)
    assert done.headers == headers
    assert done.causation_id == command.envelope_id  # what the caller's step waits for
    assert reply_to_of(driver.instance()) == (None if caller is None else "outer-flow")
    if caller == "nested":  # the caller, a nested instance too, finds its own instance
        assert instance_of(result_command("outer-flow", done)) == CALLER_INSTANCE


def test_a_top_level_workflows_commands_carry_no_instance_header() -> None:
    (lookup,) = Driver(engine()).feed(start()).commands
    assert lookup.headers == {REPLY_TO_HEADER: "greet-flow", PARTITION_KEY_HEADER: f"global/{FLOW}"}


def test_a_client_keys_a_start_by_the_instance_it_starts() -> None:
    keyed = keyed_for_instance(start())
    assert keyed.headers[PARTITION_KEY_HEADER] == f"global/{FLOW}"
    assert keyed.model_copy(update={"headers": {}}) == start()  # nothing else changed
    already = new_command("greet-flow", {}, headers={PARTITION_KEY_HEADER: "mine"})
    assert keyed_for_instance(already) is already


# -- the property: what is delivered twice or late does not change the end -------------


def world(command: OnexEnvelope) -> dict[str, Any]:
    """Each step node's answer, from its command alone."""
    if command.node_id == "query-user":
        user = str(command.payload["user_id"])
        return {"name": user.upper(), "vip": user.endswith("1")}
    return dict(command.payload)


def run(
    order: Callable[[list[OnexEnvelope]], int],
    duplicate: Callable[[], bool],
    user: str,
    caller: str | None = None,
) -> tuple[Driver, int]:
    """Run one instance to its end: results come back in the order ``order`` picks,
    some twice (``duplicate``). Return the driver and how many answers it gave."""
    driver = Driver(engine())
    inbox = [start(user, caller)]
    instance = instance_of(inbox[0])
    while inbox:
        command = inbox.pop(order(inbox))
        assert instance_of(command) == instance  # each result finds the instance
        if duplicate():
            inbox.append(command)  # delivered again, later
        decision = driver.feed(command)
        inbox += [answer(c, world(c)) for c in decision.commands]
    return driver, len(driver.answers)


CALLERS = st.sampled_from([None, "flow", "nested"])


@settings(max_examples=200, deadline=None)
@given(st.data(), st.sampled_from(["u1", "u2"]), CALLERS)
def test_any_order_with_duplicates_ends_as_a_clean_run(
    data: st.DataObject, user: str, caller: str | None
) -> None:
    clean, clean_answers = run(lambda inbox: 0, lambda: False, user, caller)
    messy, messy_answers = run(
        lambda inbox: data.draw(st.integers(0, len(inbox) - 1)),
        lambda: data.draw(st.booleans()),
        user,
        caller,
    )
    assert (clean_answers, messy_answers) == (1, 1)
    end, again = clean.instance(), messy.instance()
    assert (end["status"], end["output"]) == (again["status"], again["output"])
    assert {n: s["status"] for n, s in end["steps"].items()} == {
        n: s["status"] for n, s in again["steps"].items()
    }
    # the same answer, but for its time (the time of the result that ended the run)
    assert clean.answers[0].model_dump() == {
        **messy.answers[0].model_dump(),
        "created_at": clean.answers[0].created_at,
    }
    assert uuid.UUID(end["start"]["envelope_id"]) == clean.answers[0].causation_id


# -- read again after a crash: what the instance still owes is sent again --------------

UNDOING: dict[str, Any] = {
    **GREET,
    "workflow": {
        **GREET["workflow"],
        "steps": [
            GREET["workflow"]["steps"][0],
            {
                **GREET["workflow"]["steps"][1],
                "compensate": {
                    "node_id": "echo-node",
                    "payload": {"undo": "steps.greet.output.text", "was": "steps.greet.status"},
                },
            },
            GREET["workflow"]["steps"][2],
        ],
    },
}
"""GREET whose compensation reads its own step (as it was when the undo was sent)."""


def respond(command: OnexEnvelope) -> OnexEnvelope:
    """A step node's result: ``account`` refuses user ``u11`` (the workflow compensates)."""
    if command.node_id == "account" and command.payload.get("account_id") == "u11":
        return failure(command)
    return answer(command, world(command))


@settings(max_examples=200, deadline=None)
@given(st.data(), st.sampled_from(["u1", "u2", "u11"]), CALLERS)
def test_the_record_read_again_sends_again_byte_for_byte_what_the_instance_owes(
    data: st.DataObject, user: str, caller: str | None
) -> None:
    """At any point of any run, the record that last changed the instance, read again at
    its offset (its snapshot reached the changelog, its commands perhaps not), sends
    each running step's and compensation's command and, once ended, the answer, exactly
    as they were first sent; any other duplicate sends nothing."""
    driver = Driver(engine(UNDOING))
    inbox = [start(user, caller)]
    last: OnexEnvelope | None = None
    sent_by_id: dict[str, str] = {}
    while inbox:
        command = inbox.pop(data.draw(st.integers(0, len(inbox) - 1)))
        decision = driver.feed(command)
        if decision.changed:
            last = command
        for made in decision.commands:
            sent_by_id[str(made.envelope_id)] = made.model_dump_json()
        inbox += [respond(c) for c in decision.commands]
        assert driver.state is not None
        assert last is not None
        again = driver.engine.decide(
            driver.state, last, ReduceContext(driver.state.partition, driver.state.offset)
        )
        assert (again.changed, again.note) == (False, "redelivered")
        owed = {
            str(record["command"])
            for record in driver.instance()["steps"].values()
            if record["status"] in ("running", "compensating")
        }
        assert {str(c.envelope_id) for c in again.commands} == owed
        assert all(c.model_dump_json() == sent_by_id[str(c.envelope_id)] for c in again.commands)
        if driver.answers:
            assert again.answer is not None
            assert again.answer.model_dump_json() == driver.answers[0].model_dump_json()
        else:
            assert again.answer is None
        elsewhere = driver.engine.decide(driver.state, last, ReduceContext(0, -1))
        assert (elsewhere.note, elsewhere.commands, elsewhere.answer) == ("duplicate", (), None)
    assert len(driver.answers) == 1
    expected = "compensated" if user == "u11" else "completed"
    assert driver.instance()["status"] == expected
    # a late result (another copy, hours later) changes the ended instance: read again,
    # it still sends the answer as it was first sent
    lookup = next(c for c in driver.sent if c.node_id == "query-user")
    copy = result_of(lookup, world(lookup)).model_copy(
        update={"envelope_id": uuid.uuid4(), "created_at": T0 + timedelta(hours=5)}
    )
    late = result_command("greet-flow", copy)
    assert driver.feed(late).note == "late"
    assert driver.state is not None
    again = driver.engine.decide(
        driver.state, late, ReduceContext(driver.state.partition, driver.state.offset)
    )
    assert again.answer is not None
    assert again.answer.model_dump_json() == driver.answers[0].model_dump_json()
