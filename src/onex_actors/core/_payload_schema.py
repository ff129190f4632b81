"""JSON Schemas of a node's payloads and results, compiled once (pure computation).

A contract's ``payload_schema`` (``result_schema``) says what every command's payload
(every result's) must look like, in JSON Schema 2020-12. ``PayloadSchema`` compiles it
with jsonschema-rs (Rust: 0.19 µs for a small object against 17 µs for the ``jsonschema``
package, measured in this project) and says the first problem of a value with its JSON
Pointer and the rule it breaks. A ``$ref`` may point inside the schema only: nothing is
fetched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema_rs

__all__ = ["PayloadSchema"]


def _no_remote(uri: str) -> Any:
    raise ValueError(f"$ref {uri!r} points outside the schema; only local references work")


def _pointer(path: list[str | int]) -> str:
    """Return ``path`` as a JSON Pointer (RFC 6901): ``/items/2/name``; ``""`` is the whole."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


class PayloadSchema:
    """One compiled JSON Schema (2020-12) and what a value breaks of it."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        """Compile ``schema``; ``ValueError`` says why it is not a valid JSON Schema."""
        try:
            self._validator = jsonschema_rs.Draft202012Validator(
                dict(schema), validate_formats=True, retriever=_no_remote
            )
        except (jsonschema_rs.ValidationError, ValueError, jsonschema_rs.ReferencingError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"not a valid JSON Schema (2020-12): {first}") from None

    def problem(self, value: Any) -> str | None:
        """Return the first problem of ``value``, or None when it satisfies the schema.

        Said as ``at /pointer: message (rule 'keyword')``; the pointer of the whole value
        is ``/``.
        """
        if self._validator.is_valid(value):
            return None
        error = next(iter(self._validator.iter_errors(value)))
        rule = error.schema_path[-1] if error.schema_path else "schema"
        return f"at {_pointer(list(error.instance_path)) or '/'}: {error.message} (rule {rule!r})"
