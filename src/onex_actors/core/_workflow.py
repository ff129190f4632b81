"""A workflow instance's decision: ``decide(instance, event, ctx)`` (SPEC §6a, the Decider).

An instance is keyed by its start command's ``correlation_id`` (a start command sent as
another workflow's step, by its own id: see :func:`instance_of`) and kept as a snapshot
(each step's status, attempts, output or error), not as a history: the value of a
``KeyState``, so it lives in a changelog like a reducer's key. Three kinds of command
reach it: the start command; a step node's result, brought back as a command by
:func:`result_command` (header ``onex-result-of``: the step command it answers); and a
timer (``timer_command``: a step's timeout or its retry backoff has passed).

Pure: every step command's id derives from the instance, the step and the attempt; its
time is the time of the command that made it; the workflow's answer derives from the
start command. A result whose step command is not the one the step waits for (an old
attempt's, a duplicate, one for an instance that ended) changes nothing and is counted
(``late``). So an instance folds the same whatever is read twice.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec
from pydantic import JsonValue

from ._as_text import time_text, uuid_text
from ._cel import WORKFLOW_VARIABLES, CelExpression, ExpressionFailed, compile_expression
from ._derive import EVENT_OF_HEADER, INSTANCE_HEADER, PARTITION_KEY_HEADER, trace_context
from ._envelope import (
    EnvelopeStatus,
    EnvelopeType,
    ErrorInfo,
    OnexEnvelope,
    assembled,
)
from ._json_object import JSON_OBJECT
from ._reducer import TIMER_HEADER, KeyState, ReduceContext, holds, stored_key
from ._uuid5 import uuid5
from ._workflow_contract import OrchestratorContract, WorkflowStep, step_fields_read

__all__ = [
    "ENDED",
    "REPLY_TO_HEADER",
    "RESULT_OF_HEADER",
    "StepTiming",
    "WorkflowDecision",
    "WorkflowEngine",
    "as_failed_result",
    "instance_of",
    "keyed_for_instance",
    "reply_to_of",
    "result_command",
    "sending_instance",
]

RESULT_OF_HEADER: Final = "onex-result-of"
"""On a result brought to an orchestrator: the id of the step command it answers."""
RESULT_STATUS_HEADER: Final = "onex-result-status"
"""On a result brought to an orchestrator: ``ok`` or ``error``."""
REPLY_TO_HEADER: Final = "onex-reply-to"
"""On a step's command: the orchestrator its result is also sent to (on its command
topic, keyed by the command's ``partition_key``: the instance's stored key)."""

ENDED: Final = frozenset({"completed", "failed", "compensated", "compensation_failed"})
"""An instance in one of these statuses takes nothing more."""
_SETTLED: Final = frozenset({"done", "skipped"})
_BUSY: Final = frozenset({"running", "waiting", "compensating"})
_RECENT: Final = 16
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def instance_of(command: OnexEnvelope) -> str:
    """Return the id of the workflow instance ``command`` (read by an orchestrator) is for.

    A timer names it. A step's result carries it (``onex-instance``) when the instance was
    started as another workflow's step, and is otherwise for its flow's instance. A start
    command sent as another workflow's step (``onex-reply-to``) starts an instance of its
    own id, so each step and each attempt starts its own; any other start command starts
    its flow's: the instance of its ``correlation_id``.
    """
    headers = command.headers
    if headers.get(TIMER_HEADER) is not None:
        named = command.payload.get("key")
        if isinstance(named, str) and named:
            return named
    elif headers.get(RESULT_OF_HEADER) is not None:
        return sending_instance(command)
    elif headers.get(REPLY_TO_HEADER) is not None:
        return uuid_text(command.envelope_id)
    return uuid_text(command.correlation_id)


def sending_instance(step: OnexEnvelope) -> str:
    """Return the id of the workflow instance that sent ``step`` (a step command or its result).

    An instance another workflow's step started names itself (``onex-instance``); any
    other is its flow's, the instance of its ``correlation_id``.
    """
    return step.headers.get(INSTANCE_HEADER) or uuid_text(step.correlation_id)


def keyed_for_instance(command: OnexEnvelope) -> OnexEnvelope:
    """Return start ``command`` keyed (``partition_key``) by the instance it starts.

    It lands in the partition that keeps the instance, rather than being sent on there
    by the orchestrator; a command keyed already is returned as it is.
    """
    if PARTITION_KEY_HEADER in command.headers:
        return command
    headers = {
        **command.headers,
        PARTITION_KEY_HEADER: stored_key(command.tenant_id, instance_of(command)),
    }
    return command.model_copy(update={"headers": headers})


def reply_to_of(instance: Mapping[str, JsonValue]) -> str | None:
    """Return the orchestrator whose step started ``instance`` (``None``: none did).

    The instance's answer goes to that orchestrator too, as any step node's result does.
    """
    reply = _start(instance).get("reply")
    if isinstance(reply, Mapping):
        to = reply.get("to")
        return to if isinstance(to, str) else None
    return None


def result_command(node_id: str, event: OnexEnvelope) -> OnexEnvelope:
    """Bring a step node's result ``event`` (ok or error) to orchestrator ``node_id``.

    Its payload is the result's (an error result's: ``{"error": {...}}``); its id derives
    from the result's (a result read again is the same command); it carries the step
    command the result answers (``onex-result-of``) and its status.
    """
    ok = event.status is EnvelopeStatus.OK
    payload: dict[str, JsonValue] = (
        dict(event.payload)
        if ok
        else {"error": event.error.model_dump(mode="json") if event.error else None}
    )
    headers = {
        **trace_context(event.headers),
        EVENT_OF_HEADER: event.node_id,
        RESULT_OF_HEADER: _id_text(event.causation_id),
        RESULT_STATUS_HEADER: "ok" if ok else "error",
    }
    nested = event.headers.get(INSTANCE_HEADER)
    if nested is not None:
        headers[INSTANCE_HEADER] = nested
    return assembled(  # every field from a valid envelope: no need to check them again
        {
            "envelope_id": uuid5(event.envelope_id, f"result-of/{node_id}"),
            "type": EnvelopeType.CMD,
            "tenant_id": event.tenant_id,
            "node_id": node_id,
            "contract_id": None,
            "correlation_id": event.correlation_id,
            "causation_id": event.envelope_id,
            "created_at": event.created_at,
            "payload": payload,
            "status": None,
            "error": None,
            "headers": headers,
            "schema_version": 1,
        }
    )


def as_failed_result(command: OnexEnvelope, error: ErrorInfo) -> OnexEnvelope | None:
    """Return ``command``, an ``ok`` result brought in by ``result_command``, failed.

    The same command as an error result carrying ``error`` (its id kept: read again, the
    original is a duplicate of what was decided); ``None`` for any other command.
    """
    headers = command.headers
    if headers.get(RESULT_STATUS_HEADER) != "ok" or headers.get(RESULT_OF_HEADER) is None:
        return None
    return command.model_copy(
        update={
            "payload": {"error": error.model_dump(mode="json")},
            "headers": {**headers, RESULT_STATUS_HEADER: "error"},
        }
    )


class WorkflowDecision(msgspec.Struct, frozen=True, gc=False):
    """What one command does to an instance."""

    state: KeyState | None
    """The instance after the command (``None``: there is none, and none was started)."""
    changed: bool
    commands: tuple[OnexEnvelope, ...] = ()
    """Step and compensation commands to send."""
    answer: OnexEnvelope | None = None
    """The workflow's result, once it ends: one ``evt`` answering the start command."""
    note: str | None = None
    """Why nothing changed: ``duplicate``, ``late``, ``stale_timer``, ``no_instance``;
    ``redelivered``: the record that last changed the instance, read again (what it still
    owes is sent again); or ``exists``: another start command for an instance that was
    started (to be refused)."""
    timings: tuple[StepTiming, ...] = ()
    """The step attempts this command ended (a result, or a timeout)."""


class StepTiming(msgspec.Struct, frozen=True, gc=False):
    """One step attempt that ended: how, and how long after its command was sent.

    ``seconds`` runs from the command's time to the result's (the step node's clock) or
    to the timer's; ``outcome`` is ``ok``, ``error`` or ``timed_out`` for the step's own
    command, and ``compensated``, ``compensation_error`` or ``compensation_timed_out``
    for its compensation's (``node_id`` is then the compensation's node).
    """

    step: str
    node_id: str
    outcome: str
    seconds: float


class WorkflowEngine:
    """An orchestrator contract, compiled: decides each command against its instance."""

    def __init__(self, contract: OrchestratorContract) -> None:
        self.contract = contract
        self.node_id = contract.node_id
        workflow = contract.workflow
        self.steps = workflow.by_name
        self._payloads = {
            step.name: _compiled_map(step.payload, f"workflow.steps.{step.name}.payload")
            for step in workflow.steps
        }
        self._when = {
            step.name: compile_expression(step.when, f"{step.name}.when", WORKFLOW_VARIABLES)
            for step in workflow.steps
            if step.when is not None
        }
        self._undo = {
            step.name: _compiled_map(step.compensate.payload, f"{step.name}.compensate")
            for step in workflow.steps
            if step.compensate is not None
        }
        self._output = _compiled_map(workflow.output, "workflow.output")

    def decide(
        self, state: KeyState | None, envelope: OnexEnvelope, ctx: ReduceContext
    ) -> WorkflowDecision:
        """Fold ``envelope`` (read at ``ctx``) into its instance ``state`` (``None``: none yet)."""
        envelope_id = uuid_text(envelope.envelope_id)
        if state is not None and holds(state, envelope_id, ctx):
            return self._held(state, envelope, ctx)
        headers = envelope.headers
        at = envelope.created_at
        commands: list[OnexEnvelope] = []
        if headers.get(TIMER_HEADER) is not None:
            if state is None:
                return WorkflowDecision(None, False, note="no_instance")
            instance = _copy(state.value)
            deadline = str(envelope.payload.get("deadline"))
            if not _is_time(deadline) or not self._timers_due(instance, deadline, at, commands):
                return WorkflowDecision(state, False, note="stale_timer")
        elif headers.get(RESULT_OF_HEADER) is not None:
            if state is None:
                return WorkflowDecision(None, False, note="no_instance")
            instance = _copy(state.value)
            if not self._take_result(instance, envelope):
                instance["late"] = _int(instance.get("late")) + 1
                after = _with(state, instance, ctx, envelope_id, at, self._deadline(instance))
                return WorkflowDecision(after, True, note="late")
        else:
            if state is not None:
                started = _start(state.value).get("envelope_id")
                return WorkflowDecision(
                    state, False, note="duplicate" if started == envelope_id else "exists"
                )
            instance = self._new(envelope)
        timings = self._timings(state, instance, at, timer=headers.get(TIMER_HEADER) is not None)
        more, answer = self._advance(instance, at)
        after = _with(state, instance, ctx, envelope_id, at, self._deadline(instance))
        sent, answer = _traced(envelope, instance, (*commands, *more), answer)
        return WorkflowDecision(after, True, sent, answer, timings=timings)

    def _held(
        self, state: KeyState, envelope: OnexEnvelope, ctx: ReduceContext
    ) -> WorkflowDecision:
        """Answer a command the instance already holds: a duplicate changes nothing.

        When it is the very record that last changed the instance, read again (a crash
        or a rebalance came before its offset was committed), the instance sends again
        what it still owes: under at-least-once its snapshot may have reached the
        changelog while the commands decided with it did not. What it owes is each
        running step's (and compensation's) current command and, once it has ended,
        its answer; each is rebuilt byte for byte (same id, time and payload), so a step
        node's idempotency and the client's reader fold them once. A command the
        instance no longer waits for was answered, so it had reached its node.
        """
        if ctx.offset is None or (ctx.partition, ctx.offset) != (state.partition, state.offset):
            return WorkflowDecision(state, False, note="duplicate")
        instance = state.value
        at = _time(state.changed_at, _EPOCH)
        commands: list[OnexEnvelope] = []
        for name, record in _steps(instance).items():
            step = self.steps.get(name)
            if step is None:
                continue
            try:
                if record["status"] == "running":
                    attempt = _int(record["attempts"])
                    when = _time(record.get("sent_at"), at)
                    commands.append(self._step_command(instance, step, attempt, when))
                elif record["status"] == "compensating" and step.compensate is not None:
                    # built while the step still showed as done
                    as_sent = _copy(instance)
                    _steps(as_sent)[name]["status"] = "done"
                    attempt = _int(record.get("undo_attempts"))
                    when = _time(record.get("undo_sent_at"), at)
                    commands.append(self._undo_command(as_sent, step, attempt, when))
            except ExpressionFailed:
                continue  # it could not be built when it was sent either
        answer = None
        if instance["status"] in ENDED:
            answer = self._answer(instance, _time(instance.get("ended_at"), at))
        sent, answer = _traced(envelope, instance, tuple(commands), answer)
        return WorkflowDecision(state, False, sent, answer, note="redelivered")

    # -- starting and advancing ---------------------------------------------------------

    def _new(self, start: OnexEnvelope) -> dict[str, JsonValue]:
        trace: dict[str, JsonValue] = {**trace_context(start.headers)}
        started: dict[str, JsonValue] = {
            "envelope_id": uuid_text(start.envelope_id),
            "correlation_id": uuid_text(start.correlation_id),
            "tenant_id": start.tenant_id,
            "created_at": time_text(start.created_at),
            "trace": trace,
        }
        reply_to = start.headers.get(REPLY_TO_HEADER)
        if reply_to is not None:  # another workflow's step: its answer goes back there
            started["instance"] = instance_of(start)
            started["reply"] = {"to": reply_to, "instance": start.headers.get(INSTANCE_HEADER)}
        return {
            "status": "running",
            "version": self.contract.version,
            "start": started,
            "input": dict(start.payload),
            "steps": {
                name: {
                    "status": "pending",
                    "attempts": 0,
                    "command": None,
                    "output": None,
                    "error": None,
                    "deadline": None,
                }
                for name in self.steps
            },
            "order": [],
            "error": None,
            "output": None,
            "ended_at": None,
            "late": 0,
        }

    def _advance(
        self, instance: dict[str, JsonValue], at: datetime
    ) -> tuple[list[OnexEnvelope], OnexEnvelope | None]:
        """Send what can be sent now; end the instance when nothing is left."""
        commands: list[OnexEnvelope] = []
        steps = _steps(instance)
        if instance["status"] == "running":
            progressed = True
            while progressed and instance["status"] == "running":
                progressed = False
                for name, step in self.steps.items():
                    record = steps[name]
                    if record["status"] != "pending":
                        continue
                    if not all(_status(steps, d) in _SETTLED for d in step.depends_on):
                        continue
                    progressed = True
                    self._start_step(instance, step, at, commands)
            if instance["status"] == "running" and all(
                _status(steps, n) in _SETTLED for n in self.steps
            ):
                variables = self._variables(instance)
                try:
                    output = {
                        field: expression.evaluate(variables)
                        for field, expression in self._output.items()
                    }
                except ExpressionFailed as exc:
                    hint = _skipped_outputs_read(self._output.values(), steps)
                    self._fail(
                        instance, "workflow", "expression_failed", f"workflow.output: {exc}{hint}"
                    )
                else:
                    instance["status"] = "completed"
                    instance["output"] = output
                    instance["ended_at"] = time_text(at)
                    return commands, self._answer(instance, at)
        if instance["status"] == "failing" and not any(
            _status(steps, n) in _BUSY for n in self.steps
        ):
            instance["status"] = (
                "compensating" if self.contract.workflow.on_failure == "compensate" else "failed"
            )
        if instance["status"] == "compensating" and not any(
            _status(steps, n) in _BUSY for n in self.steps
        ):
            undo = [
                n
                for n in reversed(_names(instance["order"]))
                if n in self._undo and _status(steps, n) == "done"
            ]
            if undo:
                self._send_undo(instance, self.steps[undo[0]], at, commands)
            else:
                instance["status"] = "compensated"
        if instance["status"] in ENDED:
            instance["ended_at"] = time_text(at)
            return commands, self._answer(instance, at)
        return commands, None

    def _start_step(
        self,
        instance: dict[str, JsonValue],
        step: WorkflowStep,
        at: datetime,
        commands: list[OnexEnvelope],
    ) -> None:
        record = _steps(instance)[step.name]
        variables = self._variables(instance)
        guard = self._when.get(step.name)
        try:
            if guard is not None and not guard.test(variables):
                record["status"] = "skipped"
                return
        except ExpressionFailed as exc:
            self._fail(instance, step.name, "expression_failed", f"step {step.name!r}: {exc}")
            return
        self._send(instance, step, at, commands, variables)

    def _send(
        self,
        instance: dict[str, JsonValue],
        step: WorkflowStep,
        at: datetime,
        commands: list[OnexEnvelope],
        variables: dict[str, object] | None = None,
    ) -> None:
        """Send ``step``'s next attempt (its payload evaluated now).

        ``variables``: the instance's as it stands, if the caller has them already.
        """
        record = _steps(instance)[step.name]
        attempt = _int(record["attempts"]) + 1
        try:
            command = self._step_command(instance, step, attempt, at, variables)
        except ExpressionFailed as exc:
            hint = _skipped_outputs_read(self._payloads[step.name].values(), _steps(instance))
            self._fail(
                instance,
                step.name,
                "expression_failed",
                f"step {step.name!r}: its command to {step.node_id!r} could not be built: "
                f"{exc}{hint}",
            )
            return
        record.update(
            status="running",
            attempts=attempt,
            command=uuid_text(command.envelope_id),
            deadline=time_text(at + timedelta(seconds=step.timeout_s)),
            sent_at=time_text(at),
        )
        commands.append(command)

    def _send_undo(
        self,
        instance: dict[str, JsonValue],
        step: WorkflowStep,
        at: datetime,
        commands: list[OnexEnvelope],
    ) -> None:
        """Send ``step``'s compensation's next attempt."""
        assert step.compensate is not None
        record = _steps(instance)[step.name]
        attempt = _int(record.get("undo_attempts")) + 1
        try:
            command = self._undo_command(instance, step, attempt, at)
        except ExpressionFailed as exc:
            record.update(status="compensation_failed", error=_error("expression_failed", str(exc)))
            instance["status"] = "compensation_failed"
            return
        record.update(
            status="compensating",
            undo_attempts=attempt,
            command=uuid_text(command.envelope_id),
            deadline=time_text(at + timedelta(seconds=step.compensate.timeout_s)),
            undo_sent_at=time_text(at),
        )
        commands.append(command)

    def _step_command(
        self,
        instance: Mapping[str, JsonValue],
        step: WorkflowStep,
        attempt: int,
        at: datetime,
        variables: dict[str, object] | None = None,
    ) -> OnexEnvelope:
        """Build attempt ``attempt`` of ``step``'s command, sent at ``at``.

        ``ExpressionFailed`` if its payload cannot be evaluated. ``variables``: the
        instance's, if the caller has them already.
        """
        if variables is None:
            variables = self._variables(instance)
        payload = {
            field: expression.evaluate(variables)
            for field, expression in self._payloads[step.name].items()
        }
        return self._command(instance, step.node_id, payload, f"step/{step.name}/{attempt}", at)

    def _undo_command(
        self, instance: Mapping[str, JsonValue], step: WorkflowStep, attempt: int, at: datetime
    ) -> OnexEnvelope:
        """Build attempt ``attempt`` of ``step``'s compensation, sent at ``at``."""
        assert step.compensate is not None
        variables = self._variables(instance)
        payload = {
            field: expression.evaluate(variables)
            for field, expression in self._undo[step.name].items()
        }
        name = f"compensate/{step.name}/{attempt}"
        return self._command(instance, step.compensate.node_id, payload, name, at)

    def _command(
        self,
        instance: Mapping[str, JsonValue],
        node_id: str,
        payload: Mapping[str, JsonValue],
        name: str,
        at: datetime,
    ) -> OnexEnvelope:
        start = _start(instance)
        tenant, correlation = str(start["tenant_id"]), str(start["correlation_id"])
        flow = _uuid(correlation)
        headers = {REPLY_TO_HEADER: self.node_id}
        nested = start.get("instance")
        if isinstance(nested, str):  # one of several in its flow: ids and results its own
            ids = _uuid(nested)
            headers[PARTITION_KEY_HEADER] = stored_key(tenant, nested)
            headers[INSTANCE_HEADER] = nested
        else:
            ids = flow
            headers[PARTITION_KEY_HEADER] = stored_key(tenant, correlation)
        return assembled(  # the payload checked as JSON; the rest built valid here
            {
                "envelope_id": uuid5(ids, name),
                "type": EnvelopeType.CMD,
                "tenant_id": tenant,
                "node_id": node_id,
                "contract_id": None,
                "correlation_id": flow,
                "causation_id": _uuid(str(start["envelope_id"])),
                "created_at": at,
                "payload": JSON_OBJECT.validate_python(payload),
                "status": None,
                "error": None,
                "headers": headers,
                "schema_version": 1,
            }
        )

    # -- results and timers -------------------------------------------------------------

    def _timings(
        self,
        state: KeyState | None,
        instance: dict[str, JsonValue],
        at: datetime,
        *,
        timer: bool,
    ) -> tuple[StepTiming, ...]:
        """Time each attempt (a step's or a compensation's) running before and not now.

        The attempt's ``seconds`` (``undo_seconds``) is also kept in its step record, for
        ``onex state``. ``timer``: the command is a timer (what it ends, it ends by timeout).
        """
        if state is None:
            return ()
        before = _steps(state.value)
        timings: list[StepTiming] = []
        for name, record in _steps(instance).items():
            old = before.get(name, {})
            if old.get("status") == "compensating":
                timing = self._undo_timing(name, old, record, at, timer=timer)
                if timing is not None:
                    timings.append(timing)
                continue
            sent = old.get("sent_at")
            if old.get("status") != "running" or not isinstance(sent, str):
                continue
            if record["status"] == "running" and record["attempts"] == old.get("attempts"):
                continue
            if record["status"] == "done":
                outcome = "ok"
            elif record["status"] == "waiting" or (
                record["status"] == "failed"
                and _mapping(record.get("error")).get("type") == "step_timed_out"
            ):
                outcome = "timed_out"
            else:
                outcome = "error"
            seconds = _seconds(sent, at)
            record["seconds"] = seconds
            timings.append(StepTiming(name, self.steps[name].node_id, outcome, seconds))
        return tuple(timings)

    def _undo_timing(
        self,
        name: str,
        old: Mapping[str, JsonValue],
        record: dict[str, JsonValue],
        at: datetime,
        *,
        timer: bool,
    ) -> StepTiming | None:
        """Time step ``name``'s compensation attempt if it ended (``None``: it runs on)."""
        sent = old.get("undo_sent_at")
        compensate = self.steps[name].compensate
        if not isinstance(sent, str) or compensate is None:
            return None
        if record["status"] == "compensating" and record.get("undo_attempts") == old.get(
            "undo_attempts"
        ):
            return None
        if timer:
            outcome = "compensation_timed_out"
        elif record["status"] == "compensated":
            outcome = "compensated"
        else:
            outcome = "compensation_error"
        seconds = _seconds(sent, at)
        record["undo_seconds"] = seconds
        return StepTiming(name, compensate.node_id, outcome, seconds)

    def _take_result(self, instance: dict[str, JsonValue], envelope: OnexEnvelope) -> bool:
        """Apply a step's (or a compensation's) result; ``False`` if none waits for it."""
        if instance["status"] in ENDED:
            return False
        answers = envelope.headers.get(RESULT_OF_HEADER)
        ok = envelope.headers.get(RESULT_STATUS_HEADER) == "ok"
        steps = _steps(instance)
        for name, record in steps.items():
            if record["command"] != answers:
                continue
            if record["status"] == "running":
                if ok:
                    record.update(status="done", output=dict(envelope.payload), deadline=None)
                    order = _names(instance["order"])
                    instance["order"] = [*order, name]
                else:
                    error = envelope.payload.get("error")
                    record.update(status="failed", error=error, deadline=None)
                    self._fail(
                        instance, name, "step_failed", f"step {name!r} failed: {_told(error)}"
                    )
                return True
            if record["status"] == "compensating":
                if ok:
                    record.update(status="compensated", deadline=None)
                    return True
                return self._undo_failed(instance, name, envelope.payload.get("error"))
        return False

    def _timers_due(
        self,
        instance: dict[str, JsonValue],
        deadline: str,
        at: datetime,
        commands: list[OnexEnvelope],
    ) -> bool:
        """Apply every step deadline at or before ``deadline``; ``False`` if there is none."""
        if instance["status"] in ENDED:
            return False
        due = False
        limit = datetime.fromisoformat(deadline)
        for name, record in _steps(instance).items():
            when = record.get("deadline")
            if not isinstance(when, str) or datetime.fromisoformat(when) > limit:
                continue
            due = True
            step = self.steps[name]
            if record["status"] == "running":
                if _int(record["attempts"]) < step.retry.attempts:
                    backoff = step.retry.backoff_s * 2 ** (_int(record["attempts"]) - 1)
                    record.update(
                        status="waiting",
                        deadline=time_text(at + timedelta(seconds=backoff)),
                    )
                else:
                    record.update(
                        status="failed",
                        deadline=None,
                        error=_error("step_timed_out", f"no result in {step.timeout_s:g} s"),
                    )
                    self._fail(
                        instance,
                        name,
                        "step_timed_out",
                        f"step {name!r} ({step.node_id}) had no result after "
                        f"{record['attempts']} attempt(s) of {step.timeout_s:g} s",
                    )
            elif record["status"] == "waiting":
                record["status"] = "pending_retry"
            elif record["status"] == "compensating":
                self._undo_failed(instance, name, _error("compensation_timed_out", "no result"))
        for name, record in _steps(instance).items():
            if record["status"] == "pending_retry":
                if instance["status"] == "running":
                    self._send(instance, self.steps[name], at, commands)
                else:  # the workflow failed meanwhile: no new attempt
                    record.update(status="failed", deadline=None)
        return due

    def _undo_failed(self, instance: dict[str, JsonValue], name: str, error: JsonValue) -> bool:
        record = _steps(instance)[name]
        compensate = self.steps[name].compensate
        assert compensate is not None
        if _int(record.get("undo_attempts")) < compensate.attempts:
            record.update(status="done", deadline=None)  # compensated again at the next advance
            return True
        record.update(status="compensation_failed", error=error, deadline=None)
        instance["status"] = "compensation_failed"
        instance["error"] = _error(
            "compensation_failed", f"compensating step {name!r} failed: {_told(error)}"
        )
        return True

    def _fail(self, instance: dict[str, JsonValue], step: str, kind: str, message: str) -> None:
        """Mark the workflow failing (the first failure is the one it reports)."""
        if step in self.steps:
            record = _steps(instance)[step]
            if record["status"] not in ("failed",):
                record.update(status="failed", deadline=None, error=_error(kind, message))
        if instance["status"] == "running":
            instance["status"] = "failing"
            instance["error"] = _error(kind, message)

    # -- what an instance shows ---------------------------------------------------------

    def _variables(self, instance: Mapping[str, JsonValue]) -> dict[str, object]:
        steps = _steps(instance)
        return {
            "input": instance["input"],
            "event": instance["start"],
            "steps": {
                name: {
                    "status": record["status"],
                    "output": record["output"],
                    "error": record["error"],
                    "attempts": record["attempts"],
                }
                for name, record in steps.items()
            },
        }

    def _deadline(self, instance: Mapping[str, JsonValue]) -> str | None:
        if instance["status"] in ENDED:
            return None
        deadlines = [
            d for r in _steps(instance).values() if isinstance(d := r.get("deadline"), str)
        ]
        return min(deadlines, key=datetime.fromisoformat) if deadlines else None

    def _answer(self, instance: Mapping[str, JsonValue], at: datetime) -> OnexEnvelope:
        """Build the workflow's result: one ``evt`` answering the start command."""
        start = _start(instance)
        status = instance["status"]
        if status == "completed":
            payload: dict[str, JsonValue] = dict(_mapping(instance["output"]))
            error = None
            state = EnvelopeStatus.OK
        else:
            reported = _mapping(instance.get("error"))
            kind = "compensation_failed" if status == "compensation_failed" else "workflow_failed"
            message = str(reported.get("message", "the workflow failed"))
            if status == "compensated":
                message += "; the steps done were compensated"
            payload = {"status": status, "steps": self._summary(instance)}
            error = ErrorInfo(type=kind, message=message, retryable=False, attempts=1)
            state = EnvelopeStatus.ERROR
        tenant = str(start["tenant_id"])
        headers: dict[str, str] = {}
        reply = start.get("reply")
        if isinstance(reply, Mapping):  # keyed to the instance of the step that started it
            outer = reply.get("instance")
            if isinstance(outer, str):
                headers[PARTITION_KEY_HEADER] = stored_key(tenant, outer)
                headers[INSTANCE_HEADER] = outer
            else:
                headers[PARTITION_KEY_HEADER] = stored_key(tenant, str(start["correlation_id"]))
        return assembled(
            {
                "envelope_id": uuid5(_uuid(str(start["envelope_id"])), "result"),
                "type": EnvelopeType.EVT,
                "tenant_id": tenant,
                "node_id": self.node_id,
                "contract_id": f"{self.node_id}@{instance['version']}",
                "correlation_id": _uuid(str(start["correlation_id"])),
                "causation_id": _uuid(str(start["envelope_id"])),
                "created_at": at,
                "payload": payload,
                "status": state,
                "error": error,
                "headers": headers,
                "schema_version": 1,
            }
        )

    def _summary(self, instance: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
        return {
            name: {"status": record["status"], "attempts": record["attempts"]}
            for name, record in _steps(instance).items()
        }


def _traced(
    trigger: OnexEnvelope,
    instance: Mapping[str, JsonValue],
    commands: tuple[OnexEnvelope, ...],
    answer: OnexEnvelope | None,
) -> tuple[tuple[OnexEnvelope, ...], OnexEnvelope | None]:
    """Give what ``trigger`` made the trace context it carries (its flow's trace goes on).

    A timer carries none: what it makes continues the start command's.
    """
    trace = trace_context(trigger.headers)
    if not trace:
        started = _mapping(_start(instance).get("trace"))
        trace = {k: v for k, v in started.items() if isinstance(v, str)}
    if not trace:
        return commands, answer
    commands = tuple(c.model_copy(update={"headers": {**c.headers, **trace}}) for c in commands)
    if answer is not None:
        answer = answer.model_copy(update={"headers": {**answer.headers, **trace}})
    return commands, answer


def _compiled_map(source: Mapping[str, str], where: str) -> dict[str, CelExpression]:
    return {
        name: compile_expression(text, f"{where}.{name}", WORKFLOW_VARIABLES)
        for name, text in source.items()
    }


def _with(
    state: KeyState | None,
    instance: dict[str, JsonValue],
    ctx: ReduceContext,
    envelope_id: str,
    at: datetime,
    deadline: str | None,
) -> KeyState:
    recent = (*(state.recent if state is not None else ()), envelope_id)[-_RECENT:]
    return KeyState(instance, ctx.partition, ctx.offset, recent, time_text(at), deadline)


def _id_text(value: uuid.UUID | None) -> str:
    """``str(value)``: a missing id reads ``None``, as it always has in ``onex-result-of``."""
    return "None" if value is None else uuid_text(value)


@functools.lru_cache(maxsize=4096)
def _uuid(text: str) -> uuid.UUID:
    """Parse an id kept as text in a snapshot (an instance's, asked for at each step)."""
    return uuid.UUID(text)


def _copy(value: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """Copy an instance deep enough to change its steps."""
    copied = dict(value)
    copied["steps"] = {name: dict(record) for name, record in _steps(value).items()}
    return copied


def _steps(instance: Mapping[str, JsonValue]) -> dict[str, dict[str, JsonValue]]:
    steps = instance["steps"]
    assert isinstance(steps, dict)
    return steps  # type: ignore[return-value]


def _start(instance: Mapping[str, JsonValue]) -> Mapping[str, JsonValue]:
    return _mapping(instance["start"])


def _mapping(value: JsonValue) -> Mapping[str, JsonValue]:
    return value if isinstance(value, dict) else {}


def _status(steps: Mapping[str, Mapping[str, JsonValue]], name: str) -> JsonValue:
    return steps[name]["status"]


def _skipped_outputs_read(
    expressions: Iterable[CelExpression], steps: Mapping[str, Mapping[str, JsonValue]]
) -> str:
    """Say which skipped steps' outputs ``expressions`` read ('' if none): they have none."""
    skipped = sorted(
        {
            name
            for expression in expressions
            for name, field in step_fields_read(expression.source)
            if field == "output" and name in steps and _status(steps, name) == "skipped"
        }
    )
    if not skipped:
        return ""
    named = " and ".join(f"steps.{name}" for name in skipped)
    was, its = ("was", "its") if len(skipped) == 1 else ("were", "their")
    return (
        f" ({named} {was} skipped, {its} 'when' false: a skipped step has no output; test "
        f"steps.{skipped[0]}.status == 'done' before reading it)"
    )


def _names(value: JsonValue) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _int(value: JsonValue) -> int:
    return value if isinstance(value, int) else 0


def _time(value: JsonValue, default: datetime) -> datetime:
    """``value`` (an ISO time from a snapshot) as a time; ``default`` when there is none."""
    return datetime.fromisoformat(value) if isinstance(value, str) and _is_time(value) else default


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _seconds(sent: str, at: datetime) -> float:
    """Seconds from ``sent`` (RFC 3339) to ``at``, never below 0, to the microsecond."""
    return round(max(0.0, (at - datetime.fromisoformat(sent)).total_seconds()), 6)


def _error(kind: str, message: str) -> dict[str, JsonValue]:
    return {"type": kind, "message": message}


def _told(error: JsonValue) -> str:
    """Return an error result's ``error`` object as one line: ``type: message``."""
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        kind = error.get("type")
        return f"{kind}: {error['message']}" if isinstance(kind, str) else str(error["message"])
    return str(error)
