"""``LlmHandler``: a chat completion per command on an OpenAI-compatible endpoint."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema
from pydantic import JsonValue

from onex_actors.core import HandlerError, JsonPath, LlmEffect, MissingValue, OnexEnvelope
from onex_actors.runtime import HandlerHealth

from ._model_api import ModelApi

__all__ = ["LlmHandler", "render_messages"]

_RAW_IN_ERROR = 2_000
"""How much of a reply that does not parse or validate goes into the error (and dlq)."""


def render_messages(effect: LlmEffect, envelope: OnexEnvelope) -> list[dict[str, JsonValue]]:
    """Return the chat messages with every placeholder filled from the envelope.

    A string is inserted as it is, any other value as JSON; nothing is evaluated.
    """
    document = envelope.model_dump(mode="json")
    values: dict[str, str] = {}
    for name, path in effect.params.items():
        try:
            value = JsonPath(path).resolve(document)
        except MissingValue as exc:
            raise HandlerError(
                f"llm.params.{name} ({path}) finds nothing in the command: {exc}",
                error_type="missing_parameter",
                retryable=False,
            ) from None
        if value is None:
            raise HandlerError(
                f"llm.params.{name} ({path}) is null in the command; the prompt needs a value",
                error_type="missing_parameter",
                retryable=False,
            )
        values[name] = value if isinstance(value, str) else json.dumps(value)
    messages: list[dict[str, JsonValue]] = []
    if effect.messages.system is not None:
        messages.append({"role": "system", "content": effect.messages.system.format(**values)})
    messages.append({"role": "user", "content": effect.messages.user.format(**values)})
    return messages


class LlmHandler:
    """Asks the model of a node's ``llm:`` section and normalizes its answer.

    The result payload: ``text`` (or ``json``, parsed and checked against the
    contract's schema), ``model``, ``finish_reason`` and ``usage``
    (``prompt_tokens``, ``completion_tokens``, ``total_tokens``).
    """

    def __init__(self, effect: LlmEffect, api: ModelApi) -> None:
        self.effect = effect
        self.api = api
        self.requests = 0
        """Requests this node sent to its model server."""
        self._validator = (
            None
            if effect.json_schema is None
            else jsonschema.Draft202012Validator(dict(effect.json_schema))
        )

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        """Send the completion request; return the normalized result."""
        self.requests += 1
        answer = await self.api.post(
            "/chat/completions",
            self._request(render_messages(self.effect, envelope)),
            max_response_bytes=self.effect.max_response_bytes,
        )
        text, finish_reason = _first_choice(answer)
        result: dict[str, JsonValue] = {
            "model": answer.get("model") if isinstance(answer.get("model"), str) else None,
            "finish_reason": finish_reason,
            "usage": _usage(answer.get("usage")),
        }
        if self.effect.output == "json":
            result["json"] = self._parsed(text, finish_reason)
        else:
            result["text"] = text
        return result

    def _request(self, messages: list[dict[str, JsonValue]]) -> dict[str, JsonValue]:
        effect = self.effect
        body: dict[str, JsonValue] = {
            "model": effect.model,
            "messages": list(messages),
            "temperature": effect.temperature,
            "max_tokens": effect.max_tokens,
            "stream": False,
        }
        if effect.seed is not None:
            body["seed"] = effect.seed
        if effect.stop:
            body["stop"] = list(effect.stop)
        if effect.response_format == "json_object":
            response_format: dict[str, JsonValue] = {"type": "json_object"}
            if effect.json_schema is not None:
                response_format["schema"] = dict(effect.json_schema)
            body["response_format"] = response_format
        return body

    def _parsed(self, text: str, finish_reason: JsonValue) -> JsonValue:
        try:
            parsed: JsonValue = json.loads(text)
        except ValueError as exc:
            raise HandlerError(
                f"the model's reply is not JSON ({exc}; finish_reason {finish_reason}); "
                f"reply: {text[:_RAW_IN_ERROR]!r}",
                error_type="llm_invalid_json",
                retryable=False,
            ) from None
        if self._validator is not None:
            error = jsonschema.exceptions.best_match(self._validator.iter_errors(parsed))
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(the top)"
                raise HandlerError(
                    f"the model's reply does not match llm.json_schema at {where}: "
                    f"{error.message}; reply: {text[:_RAW_IN_ERROR]!r}",
                    error_type="llm_schema_mismatch",
                    retryable=False,
                )
        return parsed

    async def health_check(self) -> HandlerHealth:
        """Unhealthy while the last request failed or the endpoint's local server is down."""
        error = self.api.trouble()
        return HandlerHealth(healthy=error is None, detail=error or "")

    async def aclose(self) -> None:
        """Do nothing: the HTTP client belongs to the host."""


def _first_choice(answer: Mapping[str, JsonValue]) -> tuple[str, JsonValue]:
    choices = answer.get("choices")
    first: Any = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise HandlerError(
            f"the model's reply has no choices[0].message.content: {str(answer)[:300]}",
            error_type="model_bad_reply",
            retryable=False,
        )
    reason = first.get("finish_reason")
    return content, reason if isinstance(reason, str) else None


def _usage(usage: JsonValue) -> dict[str, JsonValue]:
    names = ("prompt_tokens", "completion_tokens", "total_tokens")
    if not isinstance(usage, dict):
        return dict.fromkeys(names)
    return {name: v if isinstance(v := usage.get(name), int) else None for name in names}
