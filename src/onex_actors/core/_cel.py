"""CEL expressions of the pure node kinds: compiled and type-checked at load, run without I/O.

One expression language for guards, assignments, keys and payload mappings (SPEC §6a),
through Google's CEL runtime (``cel-expr-python``, the C++ implementation): an
expression naming a variable its node kind does not have, calling a function that does
not exist or mixing types the checker can see (``1 + 'a'``) is refused at load. Values
are JSON: integers stay integers, so ``state.total + input.amount`` with ``amount: 2.5``
fails at run time (CEL does not mix int and double); write ``double(x)`` where both occur.
A run-time failure (a missing field, a wrong type, division by zero) is an
``ExpressionFailed`` naming the contract key, never a crash.

Two common shapes skip the CEL runtime (most of an expression's cost): a field path
(``input.k``) and a sum of field paths and integer literals (``state.count + 1``). They
give the runtime's value and fall back to it for anything else (a missing field, a
double, an overflow), so they fail where it fails, with two exceptions, where the
runtime refuses a whole variable for a field the expression need not read and the
short ways read only the fields they name: an integer past 64 bits, and a text holding
the character U+0000 (the runtime would cut it short there, silently: such an
evaluation is refused instead).
"""

from __future__ import annotations

import datetime
import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs
from cel_expr_python import cel
from pydantic import JsonValue

from ._errors import OnexError

__all__ = [
    "COMPUTE_VARIABLES",
    "REDUCER_VARIABLES",
    "WORKFLOW_VARIABLES",
    "CelExpression",
    "ExpressionFailed",
    "compile_expression",
    "expression_problems",
    "without_text",
]

_DYN: Final = cel.Type.DYN
COMPUTE_VARIABLES: Final = ("event", "input")
"""Variables of a compute node's expressions: the command envelope and its payload."""
REDUCER_VARIABLES: Final = ("event", "input", "state", "key")
"""Variables of a reducer's expressions: also the key's state and the key itself."""
WORKFLOW_VARIABLES: Final = ("event", "input", "steps")
"""Variables of a workflow's expressions: the start command, its payload, and each step
by name (``steps.<name>.output``, ``.status``, ``.attempts``, ``.error``)."""


class ExpressionFailed(OnexError):
    """A CEL expression failed on one input (a missing field, a wrong type, ...)."""


@functools.cache
def _environment(variables: tuple[str, ...]) -> Any:
    types = {name: (cel.Type.STRING if name == "key" else _DYN) for name in variables}
    return cel.NewEnv(variables=types)


_FIELD_PATH: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+\Z")
_OPERAND: Final = r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+|0|[1-9][0-9]{0,18})"
_SUM: Final = re.compile(rf"^{_OPERAND}\s*([+-])\s*{_OPERAND}\Z")
_INT64: Final = range(-(2**63), 2**63)
_MISSING: Final = object()
"""A field path's value where the variables have none (``null`` is ``None``)."""

Operand = tuple[str, ...] | int
"""A field path's names, or an integer literal."""


@attrs.frozen
class CelExpression:
    """A compiled CEL expression and where it was written (``fsm.transitions.0.guard``)."""

    source: str
    where: str
    program: Any = attrs.field(eq=False, repr=False)
    uses: frozenset[str]
    """The variables it reads (the others need not be built for it)."""
    path: tuple[str, ...] | None = None
    """For a plain field path (``input.account_id``): its names, read without the CEL
    runtime (a fifth of its time), with the same value and the same failure."""
    sum: tuple[Operand, str, Operand] | None = None
    """For ``a + b`` or ``a - b`` of field paths and integer literals (``state.count +
    1``): both operands and the operator, added in Python when both are integers and the
    result fits CEL's 64 bits; anything else (a double, a missing field, an overflow)
    goes to the CEL runtime, which gives the value or the failure."""

    def evaluate(self, variables: Mapping[str, object]) -> JsonValue:
        """Return the expression's JSON value; ``ExpressionFailed`` if it fails."""
        if self.sum is not None:
            left, operator, right = self.sum
            a, b = _operand(left, variables), _operand(right, variables)
            if type(a) is int and type(b) is int and a in _INT64 and b in _INT64:
                result = a + b if operator == "+" else a - b
                if result in _INT64:
                    return result
        path = self.path
        if path is not None:
            found = _lookup(path, variables)
            if found is None or isinstance(found, int | float | bool):
                return found
            if isinstance(found, str) and "\x00" not in found:
                return found
        if _holds_nul(variables):
            raise ExpressionFailed(
                f"{self.where}: {self.source!r} cannot be evaluated: a text in its variables "
                "holds the character U+0000, which the CEL runtime would cut short there "
                "(silently changing the value); send text without it"
            )
        try:
            value = self.program.eval(data=variables)
        except Exception as exc:  # the binding raises for some failures, not all
            raise ExpressionFailed(f"{self.where}: {self.source!r} failed: {exc}") from None
        if value.type() == cel.Type.ERROR:
            raise ExpressionFailed(f"{self.where}: {self.source!r} failed: {value.value()}")
        try:
            return _json(value.plain_value())
        except ValueError as exc:
            raise ExpressionFailed(f"{self.where}: {self.source!r} gave {exc}") from None

    def test(self, variables: Mapping[str, object]) -> bool:
        """Evaluate a guard: ``ExpressionFailed`` unless it gives a bool."""
        value = self.evaluate(variables)
        if not isinstance(value, bool):
            raise ExpressionFailed(
                f"{self.where}: {self.source!r} gave {value!r}, not true or false"
            )
        return value


_TEXT: Final = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")


def without_text(source: str) -> str:
    """Return ``source`` with each text literal emptied (``'state.x'`` → ``''``).

    What is left is code alone, for the checks at load that look for names in it.
    """
    return _TEXT.sub("''", source)


def expression_problems(sources: Iterable[tuple[str, str]], variables: Sequence[str]) -> list[str]:
    """Say each ``(key, CEL)`` of ``sources`` that does not compile, with its key.

    For checks that gather every problem of a section at once (a state machine, a
    workflow): one expression that does not compile hides none of the others.
    """
    problems = []
    for where, source in sources:
        try:
            compile_expression(source, where, variables)
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def compile_expression(source: str, where: str, variables: Sequence[str]) -> CelExpression:
    """Compile ``source`` against ``variables``; ``ValueError`` saying why it cannot be.

    The message starts with ``where`` (the contract key), as pydantic errors do not
    nest inside a dict of expressions.
    """
    names = tuple(variables)
    try:
        program = _environment(names).compile(source)
    except Exception as exc:
        raise ValueError(
            f"{where}: {source!r} is not a valid CEL expression over "
            f"{', '.join(names)}: {_first_problem(str(exc))}"
        ) from None
    uses = frozenset(name for name in names if not _compiles_without(source, names, name))
    stripped = source.strip()
    path = tuple(stripped.split(".")) if _FIELD_PATH.match(stripped) else None
    found = _SUM.match(stripped)
    sum_ = None
    if found:
        left, operator, right = found.groups()
        sum_ = (_parsed_operand(left), operator, _parsed_operand(right))
    return CelExpression(
        source=source, where=where, program=program, uses=uses, path=path, sum=sum_
    )


def _parsed_operand(text: str) -> Operand:
    return int(text) if text[0].isdigit() else tuple(text.split("."))


def _operand(operand: Operand, variables: Mapping[str, object]) -> object:
    """Return an integer literal's value, or a field path's (``_MISSING`` where it has none)."""
    return operand if isinstance(operand, int) else _lookup(operand, variables)


def _lookup(path: tuple[str, ...], variables: Mapping[str, object]) -> object:
    """Return the value at ``path`` (``state.count``) in ``variables``; ``_MISSING`` if none."""
    found: object = variables
    for name in path:
        if type(found) is dict:  # nearly always: isinstance of an ABC costs more than the read
            found = found.get(name, _MISSING)
            if found is _MISSING:
                return _MISSING
        elif isinstance(found, Mapping) and name in found:
            found = found[name]
        else:
            return _MISSING
    return found


def _holds_nul(value: object) -> bool:
    """Whether any text in ``value`` (keys too) holds U+0000."""
    kind = type(value)
    if kind is str:
        return "\x00" in value  # type: ignore[operator]
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if "\x00" in key or (type(item) is not int and _holds_nul(item)):
                return True
        return False
    if kind is list:
        return any(_holds_nul(item) for item in value)  # type: ignore[attr-defined]
    if isinstance(value, Mapping):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, tuple):
        return any(_holds_nul(item) for item in value)
    return False


def _first_problem(message: str) -> str:
    """``ERROR: <input>:1:6: undeclared reference ...`` (and a caret drawing) → one line."""
    for line in message.splitlines():
        _, found, rest = line.partition("ERROR: <input>:")
        if found:
            return "at " + rest.strip()
    return message.splitlines()[0].removeprefix("INVALID_ARGUMENT: ") if message else "refused"


def _compiles_without(source: str, names: tuple[str, ...], left_out: str) -> bool:
    try:
        _environment(tuple(n for n in names if n != left_out)).compile(source)
    except Exception:
        return False
    return True


def _json(value: object) -> JsonValue:
    """Turn a CEL plain value into JSON (timestamps as RFC 3339 text, durations in seconds)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(
            f"{value} (a double past its range, or not a number), which JSON cannot hold; "
            "keep the arithmetic in range, or test for it (a guard, a conditional)"
        )
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_json(item) for item in value]
    if isinstance(value, dict):
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(
                    f"a map with a {type(key).__name__} key ({key!r}); JSON keys are text"
                )
            out[key] = _json(item)
        return out
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    raise ValueError(f"a {type(value).__name__}, which JSON cannot hold")
