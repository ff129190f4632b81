"""What a handler span says about its call, by node kind (OpenTelemetry conventions).

An effect's call is a client span named and described as its family's conventions say:
``http.*`` for HTTP, ``db.*`` for PostgreSQL and Qdrant, ``gen_ai.*`` for chat and
embedding models; a pure node's decision and the local handler are internal spans.
Only the contract's fixed parts are recorded (a URL template, a parameterized SQL text,
a model name), never a payload's values.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.trace import SpanKind
from pydantic import JsonValue

from onex_actors.core import EffectContract, HostedNode

__all__ = ["Call", "answer_attributes", "call_of"]

Attributes = dict[str, str | int | float | bool | list[str]]


class Call:
    """A node's handler call as a span: its name, kind and fixed attributes."""

    __slots__ = ("attributes", "kind", "name")

    def __init__(self, name: str, kind: SpanKind, attributes: Attributes) -> None:
        self.name = name
        self.kind = kind
        self.attributes = attributes


def call_of(node: HostedNode) -> Call:
    """Describe ``node``'s handler calls."""
    contract = node.contract
    base: Attributes = {"onex.node_id": node.node_id, "onex.node.kind": contract.kind.value}
    if not isinstance(contract, EffectContract):
        return Call(f"decide {node.node_id}", SpanKind.INTERNAL, base)
    if contract.http is not None:
        http = contract.http
        return Call(
            f"{http.method} {http.url_template}",
            SpanKind.CLIENT,
            {**base, "http.request.method": http.method, "url.template": http.url_template},
        )
    if contract.db is not None:
        sql = contract.db.sql.strip()
        operation = sql.split(None, 1)[0].upper() if sql else "QUERY"
        return Call(
            f"{operation} {node.node_id}",
            SpanKind.CLIENT,
            {
                **base,
                "db.system.name": "postgresql",
                "db.operation.name": operation,
                "db.query.text": sql,
                "db.namespace": contract.db.connection,
            },
        )
    if contract.llm is not None:
        llm = contract.llm
        return Call(
            f"chat {llm.model}",
            SpanKind.CLIENT,
            {
                **base,
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": llm.model,
                "gen_ai.request.temperature": llm.temperature,
                "gen_ai.request.max_tokens": llm.max_tokens,
            },
        )
    if contract.embedding is not None:
        embedding = contract.embedding
        return Call(
            f"embeddings {embedding.model}",
            SpanKind.CLIENT,
            {
                **base,
                "gen_ai.operation.name": "embeddings",
                "gen_ai.request.model": embedding.model,
            },
        )
    if contract.vector is not None:
        vector = contract.vector
        return Call(
            f"{vector.operation} {vector.collection}",
            SpanKind.CLIENT,
            {
                **base,
                "db.system.name": "qdrant",
                "db.operation.name": vector.operation,
                "db.collection.name": vector.collection,
            },
        )
    return Call(f"handle {node.node_id}", SpanKind.INTERNAL, base)


def answer_attributes(node: HostedNode, payload: Mapping[str, JsonValue]) -> Attributes:
    """Return what ``node``'s answer ``payload`` tells about the call (counts, codes)."""
    contract = node.contract
    if not isinstance(contract, EffectContract):
        return {}
    found: Attributes = {}
    if contract.http is not None and isinstance(status := payload.get("status"), int):
        found["http.response.status_code"] = status
    if contract.llm is not None:
        usage = payload.get("usage")
        if isinstance(usage, dict):
            for ours, theirs in (
                ("prompt_tokens", "gen_ai.usage.input_tokens"),
                ("completion_tokens", "gen_ai.usage.output_tokens"),
            ):
                if isinstance(count := usage.get(ours), int):
                    found[theirs] = count
        if isinstance(model := payload.get("model"), str):
            found["gen_ai.response.model"] = model
        if isinstance(reason := payload.get("finish_reason"), str):
            found["gen_ai.response.finish_reasons"] = [reason]
    if contract.embedding is not None and isinstance(size := payload.get("dimensions"), int):
        found["gen_ai.embeddings.dimension.count"] = size
    if contract.db is not None and isinstance(rows := payload.get("rowcount"), int):
        found["db.response.returned_rows"] = rows
    return found
