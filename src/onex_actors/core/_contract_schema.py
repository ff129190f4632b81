"""The JSON Schema of contract files, for editors (pure: a dict from the pydantic models).

``onex contracts schema`` writes it to ``schemas/onex-contract.schema.json``; a contract
file whose first line is ``# yaml-language-server: $schema=<path to it>`` is completed and
checked as it is typed (VS Code's and JetBrains' YAML support read that line). Each kind
is chosen by ``kind`` (``if``/``then``), so an editor reports a wrong key against the
kind the file declares, not against all of them. The models stay the authority: what a
schema cannot say (a JSONPath's grammar, a SQL parameter's mapping) is checked at load.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from ._node_contracts import AnyContract

__all__ = ["SCHEMA_FILE", "contract_json_schema"]

SCHEMA_FILE = "schemas/onex-contract.schema.json"
"""Where the schema is kept, from the project root."""


def contract_json_schema() -> dict[str, Any]:
    """Return the JSON Schema (2020-12) of a contract file of any kind."""
    generated = TypeAdapter(AnyContract).json_schema(mode="validation")
    mapping: dict[str, str] = generated["discriminator"]["mapping"]
    for definition in generated["$defs"].values():
        for key in ("payload_schema", "result_schema"):
            field = definition.get("properties", {}).get(key)
            if field is not None:  # a file's name is read by the registry
                field["anyOf"] = [
                    {"type": "object"},
                    {"type": "string", "description": "a JSON or YAML file beside the contract"},
                    {"type": "null"},
                ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "onex contract",
        "description": (
            "A runtime-host or node contract of onex-actors (written by `onex contracts "
            "schema` from the contract models; do not edit)"
        ),
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"enum": sorted(mapping)}},
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {"$ref": reference},
            }
            for kind, reference in sorted(mapping.items())
        ],
        "$defs": generated["$defs"],
    }
