"""A payload as the runtime accepts one: a JSON object whose numbers are all finite.

Python's floats hold ``nan`` and ``inf``, and pydantic's ``JsonValue`` lets them through,
but JSON has no way to write them: the encoder would write ``null`` instead, silently
changing a handler's result or a reducer's state on its way to Kafka (and the state
restored from the changelog would then differ from the state the host held). Every
payload the runtime builds from a handler's, a function's or a caller's values goes
through :data:`JSON_OBJECT`, which refuses them, naming the field.
"""

from __future__ import annotations

import math
from typing import Annotated, Final

from pydantic import AfterValidator, ConfigDict, JsonValue, TypeAdapter, ValidationError

__all__ = ["JSON_OBJECT", "has_non_finite", "non_finite_path", "payload_problem"]


def has_non_finite(value: JsonValue) -> bool:
    """Whether a non-finite float is anywhere inside ``value`` (no paths: the fast check)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            if not math.isfinite(item):  # type: ignore[arg-type]
                return True
        elif kind is dict:
            stack.extend(item.values())  # type: ignore[union-attr]
        elif kind is list:
            stack.extend(item)  # type: ignore[arg-type]
    return False


def non_finite_path(path: str, value: JsonValue) -> str | None:
    """Return the path of the first non-finite float inside ``value``, if any."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            found = non_finite_path(f"{path}.{key}", item)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = non_finite_path(f"{path}[{index}]", item)
            if found is not None:
                return found
    return None


def _finite(payload: dict[str, JsonValue]) -> dict[str, JsonValue]:
    if has_non_finite(payload):
        path = non_finite_path("payload", payload)
        raise ValueError(
            f"field {path!r} is NaN or infinite, which JSON cannot hold (it would be "
            "written as null); give a finite number, or the value as a string"
        )
    return payload


JSON_OBJECT: Final = TypeAdapter(
    Annotated[dict[str, JsonValue], AfterValidator(_finite)], config=ConfigDict(title="payload")
)
"""Validates a payload: a JSON object (text keys, JSON values) with finite numbers only;
``pydantic.ValidationError`` (a ``ValueError``) says what is not."""


def payload_problem(error: ValidationError) -> str:
    """Say what :data:`JSON_OBJECT` refused in a payload: the field, what it held, the fix."""
    first = error.errors(include_url=False)[0]
    location = first["loc"]
    got = first.get("input")
    if first["type"] == "invalid-json-value":
        # the location alternates keys or indexes with the union member they were read as
        parts = [location[0], *location[2::2]] if location else []
        path = "payload" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts
        )
        kind = type(got)
        return (
            f"field {path!r} holds a {kind.__module__}.{kind.__qualname__} "
            f"({got!r:.60}), which is not a JSON value; give it as a string, number, "
            "boolean, null, list or mapping (a date or time as its isoformat(), say)"
        )
    if location[-1:] == ("[key]",):
        return f"key {location[0]!r} of the payload is not text; JSON objects' keys are strings"
    return first["msg"].removeprefix("Value error, ")
