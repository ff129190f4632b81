"""The compute node's contract: a stateless transformation of each command (SPEC §6a)."""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from ._cel import COMPUTE_VARIABLES, CelExpression, compile_expression
from ._contracts import PureNodeContract, ThenCommand, _Model
from ._ids import NodeKind

__all__ = ["ComputeContract", "ComputeSpec"]

_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*\Z")


class ComputeSpec(_Model):
    """What a compute node makes of a command: a CEL field map, or a Python function."""

    output: dict[str, str] | None = None
    """Field of the result to a CEL expression over ``event`` (the command envelope) and
    ``input`` (its payload), e.g. ``gross: "input.net * 1.2"``."""
    function: str | None = None
    """``package.module:function``: a pure function of the payload (a ``dict``) returning
    the result payload; imported when the host starts (a missing one stops the start)."""

    @field_validator("output")
    @classmethod
    def _check_output(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            if not value:
                raise ValueError("compute.output maps no field; name at least one")
            for name, source in value.items():
                compile_expression(source, f"compute.output.{name}", COMPUTE_VARIABLES)
        return value

    @field_validator("function")
    @classmethod
    def _check_function(cls, value: str | None) -> str | None:
        if value is not None and not _FUNCTION.match(value):
            raise ValueError(
                f"compute.function {value!r} must name a function as package.module:function"
            )
        return value

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.output is None) == (self.function is None):
            raise ValueError("a compute section has either 'output' or 'function', not both")
        return self

    @property
    def expressions(self) -> dict[str, CelExpression]:
        """The compiled ``output`` expressions by field (empty for a function)."""
        return {
            name: compile_expression(source, f"compute.output.{name}", COMPUTE_VARIABLES)
            for name, source in (self.output or {}).items()
        }


class ComputeContract(PureNodeContract):
    """A node that transforms each command into its result, with no state and no I/O."""

    kind: Literal[NodeKind.COMPUTE] = NodeKind.COMPUTE
    compute: ComputeSpec
    then: ThenCommand | None = None
    """Send a command to another node with each ``ok`` result (a chained flow)."""
    concurrency: int = Field(default=1, ge=1, le=10_000)
    """Pure work gains nothing from more workers (one takes a whole slice at a time)."""
