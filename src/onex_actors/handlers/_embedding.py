"""``EmbeddingHandler``: vectors from an OpenAI-compatible ``/v1/embeddings`` endpoint.

A slice of envelopes is one request (up to the contract's ``max_batch`` texts); an
envelope whose input is wrong fails alone, with its own error event and dead letter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pydantic import JsonValue

from onex_actors.core import EmbeddingEffect, HandlerError, JsonPath, MissingValue, OnexEnvelope
from onex_actors.runtime import HandlerHealth

from ._capped import one_of_batch
from ._model_api import ModelApi

__all__ = ["EmbeddingHandler"]


class EmbeddingHandler:
    """Embeds the text a node's ``embedding.input`` path finds in each command.

    The result payload: ``vector`` (floats), ``dimensions``, ``model`` and ``usage``.
    """

    def __init__(self, effect: EmbeddingEffect, api: ModelApi) -> None:
        self.effect = effect
        self.api = api
        self.requests = 0
        """Requests this node sent to its model server."""
        self._input = JsonPath(effect.input)

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        """Embed one command's text."""
        return await one_of_batch(self, envelope)

    async def execute_batch(
        self, envelopes: Sequence[OnexEnvelope]
    ) -> Sequence[Mapping[str, JsonValue] | HandlerError]:
        """Embed every command's text, ``max_batch`` texts per request."""
        outcomes: list[Mapping[str, JsonValue] | HandlerError | None] = [None] * len(envelopes)
        texts: list[tuple[int, str]] = []
        for index, envelope in enumerate(envelopes):
            text = self._text(envelope)
            if isinstance(text, HandlerError):
                outcomes[index] = text
            else:
                texts.append((index, text))
        size = self.effect.max_batch
        for start in range(0, len(texts), size):
            chunk = texts[start : start + size]
            try:
                vectors = await self._embed([text for _, text in chunk])
            except HandlerError as error:
                for index, _ in chunk:
                    outcomes[index] = error
                continue
            for (index, _), result in zip(chunk, vectors, strict=True):
                outcomes[index] = result
        return [outcome for outcome in outcomes if outcome is not None]

    def _text(self, envelope: OnexEnvelope) -> str | HandlerError:
        path = self.effect.input
        try:
            value = self._input.resolve(envelope.model_dump(mode="json"))
        except MissingValue as exc:
            return HandlerError(
                f"embedding.input ({path}) finds nothing in the command: {exc}",
                error_type="missing_parameter",
                retryable=False,
            )
        if not isinstance(value, str) or not value.strip():
            shown = type(value).__name__ if not isinstance(value, str) else "an empty string"
            return HandlerError(
                f"embedding.input ({path}) is {shown}; a non-empty string is needed",
                error_type="invalid_input",
                retryable=False,
            )
        if len(value) > self.effect.max_input_chars:
            return HandlerError(
                f"embedding.input ({path}) has {len(value)} characters, over "
                f"max_input_chars={self.effect.max_input_chars}",
                error_type="invalid_input",
                retryable=False,
            )
        return value

    async def _embed(self, texts: list[str]) -> list[Mapping[str, JsonValue]]:
        body: dict[str, JsonValue] = {
            "model": self.effect.model,
            "input": list(texts),
            "encoding_format": "float",
        }
        if self.effect.input_type is not None:
            body["input_type"] = self.effect.input_type
        self.requests += 1
        answer = await self.api.post(
            "/embeddings", body, max_response_bytes=self.effect.max_response_bytes
        )
        data = answer.get("data")
        if not isinstance(data, list) or len(data) != len(texts):
            count = len(data) if isinstance(data, list) else "no"
            raise HandlerError(
                f"the embedding server answered {count} vectors for {len(texts)} texts",
                error_type="model_bad_reply",
                retryable=False,
            )
        model = answer.get("model") if isinstance(answer.get("model"), str) else None
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else None
        ordered = sorted(data, key=_index)
        return [self._result(item, model, usage) for item in ordered]

    def _result(
        self, item: JsonValue, model: JsonValue, usage: JsonValue
    ) -> Mapping[str, JsonValue]:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(vector, list) or not all(
            isinstance(x, int | float) and math.isfinite(x) for x in vector
        ):
            raise HandlerError(
                "the embedding server answered an item with no list of finite numbers",
                error_type="model_bad_reply",
                retryable=False,
            )
        expected = self.effect.dimensions
        if expected is not None and len(vector) != expected:
            raise HandlerError(
                f"the embedding model answered {len(vector)} dimensions; the contract's "
                f"embedding.dimensions is {expected}: fix the contract or the model",
                error_type="dimension_mismatch",
                retryable=False,
            )
        return {"vector": vector, "dimensions": len(vector), "model": model, "usage": usage}

    async def health_check(self) -> HandlerHealth:
        """Unhealthy while the last request failed or the endpoint's local server is down."""
        error = self.api.trouble()
        return HandlerHealth(healthy=error is None, detail=error or "")

    async def aclose(self) -> None:
        """Do nothing: the HTTP client belongs to the host."""


def _index(item: JsonValue) -> int:
    index = item.get("index") if isinstance(item, dict) else None
    return index if isinstance(index, int) else 0
