"""Turning a parsed YAML document into a contract model, with errors naming file and key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from ._compute_contract import ComputeContract
from ._contracts import EffectContract, RuntimeHostContract
from ._errors import ContractError
from ._node_contracts import AnyContract
from ._reducer_contract import ReducerContract
from ._workflow_contract import OrchestratorContract

__all__ = ["CONTRACT_KINDS", "parse_contract"]

_MODELS: Final[dict[str, type[Any]]] = {
    "effect": EffectContract,
    "compute": ComputeContract,
    "reducer": ReducerContract,
    "orchestrator": OrchestratorContract,
    "runtime_host": RuntimeHostContract,
}
CONTRACT_KINDS: Final = tuple(_MODELS)
"""Values of ``kind`` that have a contract model."""

_ADAPTER: Final[TypeAdapter[AnyContract]] = TypeAdapter(AnyContract)


def parse_contract(document: object, *, source: str) -> AnyContract:
    """Validate one YAML document (already parsed) into a contract.

    ``source`` names where the document came from (a file path) and starts every
    problem line of the ``ContractError`` raised when the document is invalid.
    """
    if not isinstance(document, Mapping):
        got = "an empty file" if document is None else type(document).__name__
        raise ContractError([f"{source}: expected a mapping of contract keys, got {got}"])
    tag = document.get("kind")
    if tag is None:
        raise ContractError(
            [f"{source}: missing required key 'kind' (one of {', '.join(CONTRACT_KINDS)})"]
        )
    if tag not in _MODELS:
        raise ContractError(
            [
                f"{source}: key 'kind': {tag!r} is not a contract kind; expected one of "
                f"{', '.join(CONTRACT_KINDS)}"
            ]
        )
    try:
        return _ADAPTER.validate_python(document)
    except ValidationError as exc:
        raise ContractError(
            [
                f"{source}: {problem}"
                for error in exc.errors(include_url=False)
                for problem in _describe(error)
            ]
        ) from None


def _describe(error: ErrorDetails) -> list[str]:
    """Say one pydantic error as problems, one a line (a check may find several at once)."""
    # The first location part is the union tag ('effect', ...); drop it.
    location = ".".join(str(part) for part in error["loc"][1:])
    kind = error["type"]
    if kind == "missing":
        return [f"missing required key {location!r}"]
    if kind == "extra_forbidden":
        return [f"unknown key {location!r}: remove it or check its spelling"]
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    shown = "" if isinstance(got, Mapping) or kind.startswith("value_error") else f" (got {got!r})"
    where = f"key {location!r}" if location else "contract"
    return [f"{where}: {line}{shown}" for line in message.split("\n")]
