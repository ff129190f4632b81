"""The reducer node's contract: keyed state folded from commands (SPEC §6a).

Either ``fsm`` (a state machine in ONEX's names: states, transitions with a trigger, a
guard, assignments and intents) or ``fold`` (field assignments, for aggregates). Every
expression is CEL, compiled and type-checked here, so a contract that loads has no
expression that cannot run; a state machine is checked for unknown and unreachable
states and for two transitions that would match the same trigger at once.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from typing import Final, Literal, Self

from pydantic import Field, JsonValue, field_validator, model_validator

from ._cel import (
    REDUCER_VARIABLES,
    CelExpression,
    compile_expression,
    expression_problems,
    without_text,
)
from ._contracts import PureNodeContract, _Model, keyed_without_fan_out
from ._ids import NodeId, NodeKind, check_slug
from ._json_object import non_finite_path

__all__ = [
    "TIMEOUT_TRIGGER",
    "Fold",
    "Fsm",
    "Intent",
    "ReducerContract",
    "ReducerInput",
    "StateSpec",
    "Transition",
]

ANY_STATE = "*"
"""``from_state: "*"``: every state that is not terminal."""
TIMEOUT_TRIGGER = "timeout"
"""The trigger a state's timeout applies (``fsm.timeouts``)."""


_HAS_STATE_FIELD: Final = re.compile(r"\bhas\(\s*state\.[A-Za-z_][A-Za-z0-9_]*\s*\)")
_STATE_FIELD: Final = re.compile(r"(?<![\w.])state\.([A-Za-z_][A-Za-z0-9_]*)")


def _compiled(source: str, where: str) -> CelExpression:
    return compile_expression(source, where, REDUCER_VARIABLES)


def _check_map(value: dict[str, str], where: str) -> dict[str, str]:
    for name, source in value.items():
        _compiled(source, f"{where}.{name}")
    return value


class Intent(_Model):
    """A command the reducer sends to another node when it changes state (ONEX intent)."""

    node_id: NodeId
    payload: dict[str, str] = Field(default_factory=dict)
    """Field of the command's payload to a CEL expression; ``state`` is the new state."""

    @field_validator("payload")
    @classmethod
    def _check_payload(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_map(value, "intents.payload")


class Transition(_Model):
    """One transition of a state machine."""

    transition_name: str
    from_state: str | tuple[str, ...]
    """The state(s) it leaves; ``"*"`` for every state that is not terminal."""
    to_state: str
    trigger: str
    """The trigger name a command must carry (``fsm.trigger`` reads it from the command)."""
    guard: str | None = None
    """CEL: the transition is taken only when true (checked before any assignment)."""
    assign: dict[str, str] = Field(default_factory=dict)
    """State field to CEL expression, all evaluated against the state before."""
    intents: tuple[Intent, ...] = ()
    priority: int = 0
    """Among transitions of one state and trigger, higher priorities are tried first."""

    @field_validator("transition_name", "trigger")
    @classmethod
    def _check_names(cls, value: str) -> str:
        return check_slug(value)

    @property
    def sources(self) -> tuple[str, ...]:
        """``from_state`` as a tuple."""
        return (self.from_state,) if isinstance(self.from_state, str) else self.from_state

    def cel_problems(self, where: str) -> list[str]:
        """Each guard or assignment that does not compile, keyed under ``where``.

        Checked with the machine (``Fsm.problems``), not field by field, so a typo in a
        guard does not hide the machine's other problems.
        """
        sources = [(f"{where}.guard", self.guard)] if self.guard is not None else []
        sources += [(f"{where}.assign.{name}", text) for name, text in self.assign.items()]
        return expression_problems(sources, REDUCER_VARIABLES)


class Fsm(_Model):
    """A state machine over each key's state."""

    state_field: str = "status"
    """The state's field holding the machine's current state."""
    states: tuple[str, ...] = Field(min_length=1)
    initial_state: str
    terminal_states: tuple[str, ...] = ()
    trigger: str = "input.trigger"
    """CEL giving the trigger name of a command (by default its payload's ``trigger``)."""
    transitions: tuple[Transition, ...] = Field(min_length=1)
    timeouts: dict[str, float] = Field(default_factory=dict)
    """State to seconds: a key that stays in the state this long (event time, from the
    command that brought it there) takes the trigger ``timeout``, once, after a restart
    too. Each such state needs a transition leaving it on ``timeout``."""

    @field_validator("trigger")
    @classmethod
    def _check_trigger(cls, value: str) -> str:
        _compiled(value, "fsm.trigger")
        return value

    @model_validator(mode="after")
    def _check_machine(self) -> Self:
        problems = self.problems()
        if problems:
            raise ValueError("\n".join(problems))  # one problem a line
        return self

    def problems(self) -> list[str]:
        """Each problem of the machine, one sentence each (empty when it is sound)."""
        states = set(self.states)
        problems: list[str] = []
        repeated = sorted({s for s in self.states if self.states.count(s) > 1})
        if repeated:
            problems.append(f"fsm.states lists {', '.join(repeated)} more than once")

        def unknown(where: str, name: str) -> None:
            if name not in states:
                problems.append(
                    f"{where}: {name!r} is not in fsm.states ({', '.join(self.states)})"
                )

        unknown("fsm.initial_state", self.initial_state)
        for name in self.terminal_states:
            unknown("fsm.terminal_states", name)
        seen: dict[tuple[str, str, int], str] = {}
        for index, transition in enumerate(self.transitions):
            where = f"fsm.transitions.{index} ({transition.transition_name})"
            for source in transition.sources:
                if source == ANY_STATE:
                    continue
                unknown(f"{where}.from_state", source)
                if source in self.terminal_states:
                    problems.append(
                        f"{where}.from_state: {source!r} is terminal, so nothing leaves it"
                    )
            unknown(f"{where}.to_state", transition.to_state)
            if self.state_field in transition.assign:
                problems.append(
                    f"{where}.assign.{self.state_field}: {self.state_field!r} is the machine's "
                    f"state_field, which the transition's to_state sets "
                    f"({transition.to_state!r}); drop this assignment"
                )
            for source in self.sources_of(transition):
                slot = (source, transition.trigger, transition.priority)
                other = seen.get(slot)
                if other is not None and other != transition.transition_name:
                    problems.append(
                        f"{where}: transitions {other!r} and {transition.transition_name!r} "
                        f"both leave {source!r} on trigger {transition.trigger!r} at priority "
                        f"{transition.priority}; give one a higher priority"
                    )
                seen[slot] = transition.transition_name
        for state, seconds in self.timeouts.items():
            where = f"fsm.timeouts.{state}"
            unknown(where, state)
            if seconds <= 0:
                problems.append(f"{where}: {seconds!r} is not a positive number of seconds")
            if state in self.terminal_states:
                problems.append(f"{where}: {state!r} is terminal: nothing leaves it on a timeout")
            elif not any(
                t.trigger == TIMEOUT_TRIGGER and state in self.sources_of(t)
                for t in self.transitions
            ):
                problems.append(
                    f"{where}: no transition leaves {state!r} on trigger {TIMEOUT_TRIGGER!r}, "
                    "so its timeout would do nothing; add one"
                )
        if not problems:  # a machine whose states all exist: which can be reached?
            unreachable = [s for s in self.states if s not in self._reachable()]
            if unreachable:
                problems.append(
                    f"fsm.states: {', '.join(map(repr, unreachable))} cannot be reached from "
                    f"{self.initial_state!r} by any transition"
                )
        for index, transition in enumerate(self.transitions):
            where = f"fsm.transitions.{index} ({transition.transition_name})"
            problems += transition.cel_problems(where)
        return problems

    def sources_of(self, transition: Transition) -> tuple[str, ...]:
        """Return the states ``transition`` leaves (``"*"`` spelt out)."""
        if ANY_STATE in transition.sources:
            return tuple(s for s in self.states if s not in self.terminal_states)
        return transition.sources

    def _reachable(self) -> set[str]:
        reached = {self.initial_state}
        queue = deque([self.initial_state])
        while queue:
            state = queue.popleft()
            for transition in self.transitions:
                if state in self.sources_of(transition) and transition.to_state not in reached:
                    reached.add(transition.to_state)
                    queue.append(transition.to_state)
        return reached

    @functools.cached_property
    def by_state_and_trigger(self) -> dict[tuple[str, str], tuple[Transition, ...]]:
        """Transitions to try for (state, trigger), highest priority first."""
        table: dict[tuple[str, str], list[Transition]] = {}
        for transition in self.transitions:
            for source in self.sources_of(transition):
                table.setdefault((source, transition.trigger), []).append(transition)
        return {
            slot: tuple(sorted(found, key=lambda t: -t.priority)) for slot, found in table.items()
        }


class Fold(_Model):
    """Field assignments applied to the key's state by every command (an aggregate)."""

    assign: dict[str, str] = Field(min_length=1)
    """State field to CEL expression, all evaluated against the state before."""
    intents: tuple[Intent, ...] = ()

    @field_validator("assign")
    @classmethod
    def _check_assign(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_map(value, "fold.assign")


class StateSpec(_Model):
    """A key's state: where it starts and how large and old it may grow."""

    initial: dict[str, JsonValue] = Field(default_factory=dict)
    """The state of a key before its first command."""
    max_bytes: int = Field(default=64 * 1024, ge=16, le=16 * 1024 * 1024)
    """A command that would make a key's state (as JSON) larger is refused
    (``state_too_large``), the state unchanged."""
    ttl_s: float | None = Field(default=None, gt=0)
    """A key not changed for this long starts again from ``initial`` (in event time)."""

    @field_validator("initial")
    @classmethod
    def _check_initial(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        found = non_finite_path("state.initial", value)
        if found is not None:
            raise ValueError(
                f"{found} is NaN or infinite, which a JSON state (its changelog record) "
                "cannot hold; start from a finite number"
            )
        return value


class ReducerInput(_Model):
    """What a reducer folds: its own commands, and the result events of named nodes."""

    commands: Literal[True] = True
    """Its own command topic, always (it is also where records are brought to their key's
    partition)."""
    events_of: tuple[str, ...] = ()
    """Nodes whose ``ok`` result events it folds too: each event is sent on to the
    reducer's own topic, in its key's partition, as a command (``core.event_command``)."""

    @field_validator("events_of")
    @classmethod
    def _check_nodes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for node_id in value:
            check_slug(node_id)
        if len(set(value)) != len(value):
            raise ValueError("input.events_of names a node twice")
        return value


class ReducerContract(PureNodeContract):
    """A node folding the commands it receives into keyed state (SPEC §6a)."""

    kind: Literal[NodeKind.REDUCER] = NodeKind.REDUCER
    key: str
    """CEL naming the state a command belongs to, e.g. ``input.account_id``."""
    input: ReducerInput = ReducerInput()
    state: StateSpec = StateSpec()
    fsm: Fsm | None = None
    fold: Fold | None = None
    concurrency: int = Field(default=1, ge=1, le=1)
    """One worker, taking a whole slice at a time: a key's commands fold in read order."""
    ordering: Literal["partition"] = "partition"
    """A reducer folds a partition's commands in the order they were read."""

    @field_validator("fan_out")
    @classmethod
    def _check_fan_out(cls, value: bool) -> bool:
        return keyed_without_fan_out(value, "a reducer")

    @field_validator("key")
    @classmethod
    def _check_key(cls, value: str) -> str:
        _compiled(value, "key")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.fsm is None) == (self.fold is None):
            raise ValueError("a reducer has either an 'fsm' or a 'fold' section, not both")
        fsm = self.fsm
        if fsm is not None:
            initial = self.state.initial.get(fsm.state_field)
            if initial is not None and initial != fsm.initial_state:
                raise ValueError(
                    f"state.initial.{fsm.state_field} is {initial!r} but fsm.initial_state is "
                    f"{fsm.initial_state!r}; drop the field from state.initial"
                )
        if self.node_id in self.input.events_of:
            raise ValueError(
                "input.events_of names the reducer itself: its answers are not its input"
            )
        problems = self._unknown_state_reads()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _expressions(self) -> list[tuple[str, str]]:
        """Each expression that may read ``state``, with its key in the contract."""
        found: list[tuple[str, str]] = []

        def intents(where: str, listed: tuple[Intent, ...]) -> None:
            for j, intent in enumerate(listed):
                found.extend(
                    (f"{where}.intents.{j}.payload.{name}", source)
                    for name, source in intent.payload.items()
                )

        if self.fsm is not None:
            found.append(("fsm.trigger", self.fsm.trigger))
            for i, transition in enumerate(self.fsm.transitions):
                where = f"fsm.transitions.{i}"
                if transition.guard is not None:
                    found.append((f"{where}.guard", transition.guard))
                found.extend((f"{where}.assign.{n}", s) for n, s in transition.assign.items())
                intents(where, transition.intents)
        if self.fold is not None:
            found.extend((f"fold.assign.{n}", s) for n, s in self.fold.assign.items())
            intents("fold", self.fold.intents)
        return found

    def _unknown_state_reads(self) -> list[str]:
        """Name each read of ``state.<field>`` where no state of the reducer has the field.

        Such a typo would fail every command it is evaluated for. ``has(state.<field>)``
        is left alone: it may test for a field an earlier version of the contract wrote.
        """
        fields = set(self.state.initial)
        if self.fsm is not None:
            fields.add(self.fsm.state_field)
            for transition in self.fsm.transitions:
                fields.update(transition.assign)
        if self.fold is not None:
            fields.update(self.fold.assign)
        given = ", ".join(sorted(fields)) or "none"
        return [
            f"{where}: {source!r} reads state.{name}, a field no state of this reducer has "
            f"(state.initial and the assignments give {given}); check its spelling, or add "
            "it to state.initial"
            for where, source in self._expressions()
            for name in dict.fromkeys(
                _STATE_FIELD.findall(_HAS_STATE_FIELD.sub("", without_text(source)))
            )
            if name not in fields
        ]

    @property
    def intents(self) -> tuple[Intent, ...]:
        """Every intent the reducer may send."""
        if self.fold is not None:
            return self.fold.intents
        assert self.fsm is not None
        return tuple(i for t in self.fsm.transitions for i in t.intents)
