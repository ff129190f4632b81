"""A small JSONPath subset for binding values from an envelope (pure).

Supported: ``$`` followed by ``.name``, ``['name']`` / ``["name"]`` and ``[index]``
steps, e.g. ``$.payload.user_id``, ``$.payload.items[0]['sku']``, ``$.tenant_id``.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import JsonValue

__all__ = ["JsonPath", "MissingValue"]

_STEP: Final = re.compile(
    r"\.(?P<name>[A-Za-z0-9_-]+)"
    r"|\[(?P<index>-?[0-9]+)\]"
    r"|\['(?P<single>[^']*)'\]"
    r'|\["(?P<double>[^"]*)"\]'
)


class MissingValue(LookupError):
    """The document has no value at the path."""


class JsonPath:
    """A parsed path; :meth:`resolve` reads it from a JSON document."""

    __slots__ = ("steps", "text")

    def __init__(self, text: str) -> None:
        if not text.startswith("$"):
            raise ValueError(f"JSONPath {text!r} must start with '$', e.g. '$.payload.user_id'")
        steps: list[str | int] = []
        i = 1
        while i < len(text):
            match = _STEP.match(text, i)
            if match is None:
                raise ValueError(
                    f"JSONPath {text!r}: cannot read from character {i} ({text[i:]!r}); "
                    "use .name, ['name'] or [index] steps"
                )
            index = match.group("index")
            if index is not None:
                steps.append(int(index))
            else:
                steps.append(
                    match.group("name") or match.group("single") or match.group("double") or ""
                )
            i = match.end()
        self.text = text
        self.steps = tuple(steps)

    def resolve(self, document: JsonValue) -> JsonValue:
        """Return the value at this path; raise ``MissingValue`` naming the missing step."""
        value = document
        for step in self.steps:
            value = _step(value, step, self.text)
        return value

    def __repr__(self) -> str:
        return f"JsonPath({self.text!r})"


def _step(value: JsonValue, step: str | int, path: str) -> JsonValue:
    if isinstance(step, int):
        if isinstance(value, list) and -len(value) <= step < len(value):
            return value[step]
    elif isinstance(value, dict) and step in value:
        return value[step]
    raise MissingValue(f"no value at {path} (missing {step!r})")
