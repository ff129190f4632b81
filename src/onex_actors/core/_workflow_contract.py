"""The orchestrator node's contract: a workflow of steps across nodes (SPEC §6a).

A workflow instance starts with a command to the orchestrator and is keyed by that
command's ``correlation_id``. Each step sends one command to a node (its payload CEL over
``input``, the start command's payload, and ``steps``, the steps before it), once the
steps it ``depends_on`` are done and its ``when`` holds; independent steps run at once.
A step past its ``timeout_s`` is sent again per ``retry``, then fails the workflow; on
failure with ``on_failure: compensate`` the steps done are undone in reverse order of
completion, each ``compensate`` command awaited. Checked at load: step names unique and
usable in CEL, dependencies that exist and form no cycle, every step an expression names
a dependency (direct or not) of the step that names it, every expression compiled.
"""

from __future__ import annotations

import functools
import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from ._cel import WORKFLOW_VARIABLES, expression_problems, without_text
from ._contracts import PureNodeContract, _Model, keyed_without_fan_out
from ._ids import NodeId, NodeKind

__all__ = [
    "OrchestratorContract",
    "StepCommand",
    "StepRetry",
    "Workflow",
    "WorkflowStep",
]

STEP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
"""A step's name: usable as ``steps.<name>`` in CEL (no ``-``)."""
_STEP_REFERENCE = re.compile(r"\bsteps\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_STEP_FIELD = re.compile(
    r"(?<![\w.])steps\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)"
)
_STEP_FIELDS = ("output", "status", "attempts", "error")
"""What an expression may read of a step: ``steps.<name>.<field>``."""


def step_fields_read(source: str) -> list[tuple[str, str]]:
    """Return each ``(step, field)`` an expression reads as ``steps.<step>.<field>``, once.

    Text literals are not reads (``'steps.a.x'``).
    """
    return list(dict.fromkeys(_STEP_FIELD.findall(without_text(source))))


def steps_named(source: str) -> set[str]:
    """Return the step names an expression reads (``steps.<name>``)."""
    return set(_STEP_REFERENCE.findall(source))


class StepRetry(_Model):
    """How often a step is sent before it fails, and how long to wait in between."""

    attempts: int = Field(default=1, ge=1, le=100)
    """Attempts in all, the first included: a step past its timeout is sent again until
    this many were sent; an error result is not retried (the node retried it already)."""
    backoff_s: float = Field(default=1.0, ge=0, le=3600)
    """Wait before attempt n+1: ``backoff_s * 2 ** (n - 1)`` after attempt n timed out."""


class StepCommand(_Model):
    """A command a step sends to undo its effect (``compensate``)."""

    node_id: NodeId
    payload: dict[str, str] = Field(default_factory=dict)
    """Field → CEL over ``input`` and ``steps`` (the step's own output included)."""
    timeout_s: float = Field(default=60.0, gt=0)
    attempts: int = Field(default=3, ge=1, le=100)
    """A compensation that fails or times out this many times parks the instance as
    ``compensation_failed`` (visible, never dropped)."""


class WorkflowStep(_Model):
    """One step: a command to a node, after its dependencies."""

    name: str
    node_id: NodeId
    payload: dict[str, str] = Field(default_factory=dict)
    """Field of the step's command payload → CEL over ``input`` and ``steps``."""
    depends_on: tuple[str, ...] = ()
    when: str | None = None
    """CEL: the step runs only if true once its dependencies are done (else skipped)."""
    timeout_s: float = Field(default=60.0, gt=0)
    retry: StepRetry = StepRetry()
    compensate: StepCommand | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not STEP_NAME.match(value):
            raise ValueError(
                f"step name {value!r}: use lowercase letters, digits and '_', starting with "
                "a letter (it is read in CEL as steps.<name>)"
            )
        return value

    def expressions(self) -> dict[str, str]:
        """Each expression of the step that runs before it is sent, by its key."""
        found = {f"payload.{name}": source for name, source in self.payload.items()}
        if self.when is not None:
            found["when"] = self.when
        return found


class Workflow(_Model):
    """The steps and what the workflow answers."""

    steps: tuple[WorkflowStep, ...] = Field(min_length=1)
    output: dict[str, str] = Field(default_factory=dict)
    """Field of the workflow's answer → CEL over ``input`` and ``steps`` (all ended)."""
    on_failure: Literal["stop", "compensate"] = "stop"
    """``stop``: a failed step fails the workflow (steps running finish, no new ones);
    ``compensate``: then the steps done are undone, newest first."""

    @model_validator(mode="after")
    def _check_graph(self) -> Self:
        problems: list[str] = []
        names = [step.name for step in self.steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"step names used twice: {', '.join(duplicates)}")
        known = set(names)
        for index, step in enumerate(self.steps):
            where = f"workflow.steps.{index} ({step.name})"
            for dependency in step.depends_on:
                if dependency not in known:
                    problems.append(f"{where}.depends_on: no step {dependency!r}")
                elif dependency == step.name:
                    problems.append(f"{where}.depends_on: a step cannot depend on itself")
        if not problems:
            cycle = self._cycle()
            if cycle:
                problems.append(
                    f"workflow.steps: the dependencies form a cycle: {' → '.join(cycle)}"
                )
        if not problems:
            problems += self._reference_problems()
        # compiled with the graph's checks, so a typo in one hides none of the others
        problems += expression_problems(self._sources(), WORKFLOW_VARIABLES)
        if problems:
            raise ValueError("\n".join(problems))  # one problem a line
        return self

    def _sources(self) -> list[tuple[str, str]]:
        """Every expression of the workflow, each with its key."""
        sources = [(f"workflow.output.{key}", source) for key, source in self.output.items()]
        for index, step in enumerate(self.steps):
            where = f"workflow.steps.{index} ({step.name})"
            sources += [(f"{where}.{key}", s) for key, s in step.expressions().items()]
            if step.compensate is not None:
                sources += [
                    (f"{where}.compensate.payload.{key}", s)
                    for key, s in step.compensate.payload.items()
                ]
        return sources

    def _reference_problems(self) -> list[str]:
        """Expressions that read a step their own step does not wait for."""
        before, known = self.before, {step.name for step in self.steps}
        problems: list[str] = []
        for index, step in enumerate(self.steps):
            where = f"workflow.steps.{index} ({step.name})"
            waits = ", ".join(sorted(before[step.name])) or "none"
            problems += [
                f"{where}.{key}: reads steps.{named}, which is not among the steps it "
                f"depends on ({waits}): add {named!r} to depends_on"
                if named in known
                else f"{where}.{key}: reads steps.{named}, and the workflow has no step "
                f"{named!r} (its steps: {', '.join(sorted(known))})"
                for key, source in step.expressions().items()
                for named in sorted(steps_named(source) - before[step.name])
            ]
            undo = step.compensate.payload if step.compensate is not None else {}
            problems += [
                f"{where}.compensate.payload.{key}: reads steps.{named}, which is neither "
                "the step nor one it depends on"
                for key, source in undo.items()
                for named in sorted(steps_named(source) - before[step.name] - {step.name})
            ]
        problems += [
            f"workflow.output.{key}: no step {named!r}"
            for key, source in self.output.items()
            for named in sorted(steps_named(source) - known)
        ]
        return problems + self._step_field_problems()

    def _step_field_problems(self) -> list[str]:
        """Name each read of ``steps.<name>.<field>`` of a field no step has (``.outptu``).

        Such a typo fails every instance when the expression runs.
        """
        return [
            f"{where}: reads steps.{named}.{field}; a step has {', '.join(_STEP_FIELDS)} "
            f"(steps.{named}.output.<field> for what its node answered)"
            for where, source in self._sources()
            for named, field in step_fields_read(source)
            if field not in _STEP_FIELDS
        ]

    def _cycle(self) -> list[str]:
        """Return a dependency cycle as step names (empty if there is none)."""
        depends = {step.name: step.depends_on for step in self.steps}
        state: dict[str, int] = {}
        path: list[str] = []

        def visit(name: str) -> list[str]:
            state[name] = 1
            path.append(name)
            for dependency in depends[name]:
                if state.get(dependency) == 1:
                    return [*path[path.index(dependency) :], dependency]
                if dependency not in state and (found := visit(dependency)):
                    return found
            path.pop()
            state[name] = 2
            return []

        for name in depends:
            if name not in state and (found := visit(name)):
                return found
        return []

    @functools.cached_property
    def before(self) -> dict[str, frozenset[str]]:
        """Each step's dependencies, direct and indirect."""
        depends = {step.name: step.depends_on for step in self.steps}
        found: dict[str, frozenset[str]] = {}

        def closure(name: str) -> frozenset[str]:
            if name not in found:
                direct = frozenset(depends[name])
                found[name] = direct.union(*(closure(d) for d in direct))
            return found[name]

        for name in depends:
            closure(name)
        return found

    @property
    def by_name(self) -> dict[str, WorkflowStep]:
        """The steps by name."""
        return {step.name: step for step in self.steps}


class OrchestratorContract(PureNodeContract):
    """A node driving a workflow across other nodes, one instance per start command."""

    kind: Literal[NodeKind.ORCHESTRATOR] = NodeKind.ORCHESTRATOR
    workflow: Workflow
    concurrency: int = Field(default=1, ge=1, le=1)
    """One worker: an instance's events fold in read order."""
    ordering: Literal["partition"] = "partition"

    @field_validator("fan_out")
    @classmethod
    def _check_fan_out(cls, value: bool) -> bool:
        return keyed_without_fan_out(value, "an orchestrator")

    @property
    def step_nodes(self) -> tuple[str, ...]:
        """Every node a step or a compensation sends commands to (their results come back)."""
        nodes = [step.node_id for step in self.workflow.steps]
        nodes += [s.compensate.node_id for s in self.workflow.steps if s.compensate is not None]
        return tuple(dict.fromkeys(nodes))
