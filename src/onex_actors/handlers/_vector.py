"""``VectorHandler``: upsert into or search a Qdrant collection (``qdrant-client``).

qdrant-client's synchronous client runs in worker threads, one call at a time per store
(its local mode is not safe to share between threads). A slice of upserts is one call;
a slice of searches is one batch query.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import trio
from pydantic import JsonValue

from onex_actors.core import HandlerError, JsonPath, MissingValue, OnexEnvelope, VectorEffect
from onex_actors.runtime import HandlerHealth

from ._capped import one_of_batch

__all__ = ["VectorHandler", "VectorStore", "point_id"]

_ID_NAMESPACE = uuid.UUID("9b1f4a52-7c1e-4a44-9a3e-2f0c1d5e6b70")


@attrs.define
class VectorStore:
    """One Qdrant client (a URL, or local mode on a folder) shared by a host's nodes."""

    name: str
    client: Any
    """A ``qdrant_client.QdrantClient``."""
    where: str
    """The URL, or ``local mode at <folder>`` (for messages; never a key)."""
    limiter: trio.CapacityLimiter = attrs.field(factory=lambda: trio.CapacityLimiter(1))
    last_error: str | None = None

    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Run ``client.<method>(*args, **kwargs)`` in a worker thread."""
        bound = getattr(self.client, method)
        return await trio.to_thread.run_sync(lambda: bound(*args, **kwargs), limiter=self.limiter)


def point_id(value: JsonValue) -> int | str:
    """Return a Qdrant point id for ``value``.

    An unsigned integer or a UUID as they are; any other string as a UUID derived from
    it (the same string, the same point).
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return str(uuid.uuid5(_ID_NAMESPACE, value))
    raise ValueError(f"a point id is an unsigned integer or a non-empty string, not {value!r}")


class VectorHandler:
    """Runs a node's ``vector:`` operation on its store's collection.

    ``upsert`` answers ``{"id", "point_id", "collection"}``; ``search`` answers
    ``{"points": [{"id", "score", "payload"}...], "collection"}``, best first.
    """

    def __init__(self, effect: VectorEffect, store: VectorStore) -> None:
        self.effect = effect
        self.store = store
        self._vector = JsonPath(effect.vector)
        self._id = JsonPath(effect.id) if effect.id is not None else None
        self._payload = {name: JsonPath(path) for name, path in effect.payload.items()}
        self._filter = {name: JsonPath(path) for name, path in effect.filter.items()}

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        """Upsert or search for one command."""
        return await one_of_batch(self, envelope)

    async def execute_batch(
        self, envelopes: Sequence[OnexEnvelope]
    ) -> Sequence[Mapping[str, JsonValue] | HandlerError]:
        """Upsert every command's point in one call, or run their searches as one batch."""
        from qdrant_client import models

        outcomes: list[Mapping[str, JsonValue] | HandlerError] = []
        requests: list[tuple[int, Any]] = []
        for envelope in envelopes:
            document = envelope.model_dump(mode="json")
            try:
                request = self._request(models, document)
            except HandlerError as error:
                outcomes.append(error)
                continue
            requests.append((len(outcomes), request))
            outcomes.append({})
        if not requests:
            return outcomes
        try:
            answers = await self._run(models, [request for _, request in requests])
        except HandlerError as error:
            for index, _ in requests:
                outcomes[index] = error
            return outcomes
        for (index, _), answer in zip(requests, answers, strict=True):
            outcomes[index] = answer
        return outcomes

    def _request(self, models: Any, document: JsonValue) -> Any:
        vector = self._read_vector(document)
        if self.effect.operation == "search":
            conditions = [
                models.FieldCondition(
                    key=name,
                    match=models.MatchValue(
                        value=_scalar_at(path, document, f"vector.filter.{name}")
                    ),
                )
                for name, path in self._filter.items()
            ]
            query_filter = models.Filter(must=conditions) if conditions else None
            return models.QueryRequest(
                query=vector, limit=self.effect.limit, filter=query_filter, with_payload=True
            )
        assert self._id is not None
        raw_id = _value_at(self._id, document, "vector.id")
        try:
            pid = point_id(raw_id)
        except ValueError as exc:
            raise HandlerError(
                f"vector.id ({self.effect.id}): {exc}", error_type="invalid_input", retryable=False
            ) from None
        payload = {
            name: _value_at(path, document, f"vector.payload.{name}")
            for name, path in self._payload.items()
        }
        return (raw_id, models.PointStruct(id=pid, vector=vector, payload=payload))

    def _read_vector(self, document: JsonValue) -> list[float]:
        value = _value_at(self._vector, document, "vector.vector")
        size = self.effect.size
        if not isinstance(value, list) or not all(_is_number(x) for x in value):
            raise HandlerError(
                f"vector.vector ({self.effect.vector}) is not a list of finite numbers",
                error_type="invalid_input",
                retryable=False,
            )
        if len(value) != size:
            raise HandlerError(
                f"vector.vector ({self.effect.vector}) has {len(value)} dimensions; collection "
                f"{self.effect.collection!r} holds vectors of {size} (vector.size)",
                error_type="dimension_mismatch",
                retryable=False,
            )
        return [float(x) for x in value if isinstance(x, int | float)]

    async def _run(self, models: Any, requests: list[Any]) -> list[Mapping[str, JsonValue]]:
        collection = self.effect.collection
        try:
            if self.effect.operation == "upsert":
                points = [point for _, point in requests]
                await self.store.call("upsert", collection, points=points, wait=True)
                self.store.last_error = None
                return [
                    {"id": raw_id, "point_id": point.id, "collection": collection}
                    for raw_id, point in requests
                ]
            responses = await self.store.call("query_batch_points", collection, requests=requests)
        except Exception as exc:
            retryable = _store_failure(exc)
            if retryable is None:
                raise  # not the store answering: a bug, which crashes the actor
            message = (
                f"Qdrant ({self.store.where}) {self.effect.operation} on {collection!r}: {exc}"
            )
            self.store.last_error = message if retryable else None
            raise HandlerError(
                message[:2000], error_type="vector_store", retryable=retryable
            ) from None
        self.store.last_error = None
        return [
            {
                "collection": collection,
                "points": [
                    {"id": point.id, "score": point.score, "payload": point.payload or {}}
                    for point in response.points
                ],
            }
            for response in responses
        ]

    async def health_check(self) -> HandlerHealth:
        """Unhealthy while the store's last call failed."""
        error = self.store.last_error
        return HandlerHealth(healthy=error is None, detail=error or "")

    async def aclose(self) -> None:
        """Do nothing: the store's client belongs to the host."""


def _store_failure(error: Exception) -> bool | None:
    """Whether a failed store call may succeed when tried again; None: not a store failure.

    Refused requests (a wrong vector, an unknown collection, a 4xx) are not retried;
    transport failures and 5xx answers are.
    """
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(error, UnexpectedResponse):
        status = error.status_code or 0
        return status >= 500 or status == 429
    if isinstance(error, ResponseHandlingException | OSError):
        return True
    if isinstance(error, ValueError | RuntimeError):  # local mode refusing the request
        return False
    return None


def _is_number(value: JsonValue) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _value_at(path: JsonPath, document: JsonValue, key: str) -> JsonValue:
    try:
        return path.resolve(document)
    except MissingValue as exc:
        raise HandlerError(
            f"{key} ({path.text}) finds nothing in the command: {exc}",
            error_type="missing_parameter",
            retryable=False,
        ) from None


def _scalar_at(path: JsonPath, document: JsonValue, key: str) -> JsonValue:
    value = _value_at(path, document, key)
    if value is None or isinstance(value, dict | list | float):
        shown = "null" if value is None else type(value).__name__
        raise HandlerError(
            f"{key} ({path.text}) is {shown}; a filter matches one string, integer or boolean",
            error_type="invalid_input",
            retryable=False,
        )
    return value
