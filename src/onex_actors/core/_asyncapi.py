"""An AsyncAPI 3.0 document of a runtime: its topics, messages and operations (pure).

The ecosystem's description of an event-driven interface (FastStream serves one as its
docs): a channel per topic a hosted node reads or writes (``cmd``, ``evt``, ``dlq``), a
message per channel with the v1 envelope and, inside it, the node's ``payload_schema``
(commands) or ``result_schema`` (results) where the contract declares them, and an
operation per node: it receives commands and replies on its result topic.
``onex contracts asyncapi`` writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._contracts import EffectContract, RuntimeHostContract
from ._envelope import ErrorInfo, OnexEnvelope
from ._node_contracts import NodeContract
from ._topics import cmd_topic, dlq_topic, evt_topic

__all__ = ["asyncapi_document"]

_REFS = "#/components/schemas/{model}"


def _envelope_with(
    kind: str, payload: Mapping[str, Any] | None, extra: Mapping[str, Any]
) -> dict[str, Any]:
    properties: dict[str, Any] = {"type": {"const": kind}, **extra}
    if payload is not None:
        properties["payload"] = dict(payload)
    return {"allOf": [{"$ref": _REFS.format(model="OnexEnvelope")}, {"properties": properties}]}


def asyncapi_document(
    runtime: RuntimeHostContract,
    nodes: Mapping[str, NodeContract],
    *,
    bootstrap_servers: str = "127.0.0.1:9092",
) -> dict[str, Any]:
    """Return the AsyncAPI 3.0.0 document of ``runtime`` hosting ``nodes`` (a dict)."""
    envelope = OnexEnvelope.model_json_schema(ref_template=_REFS)
    schemas: dict[str, Any] = dict(envelope.pop("$defs", {}))
    schemas["OnexEnvelope"] = envelope
    schemas.setdefault("ErrorInfo", ErrorInfo.model_json_schema(ref_template=_REFS))
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for node_id in runtime.host_selector.node_ids:
        node = nodes.get(node_id)
        if node is None:
            continue
        family = f" ({node.effect_type.value})" if isinstance(node, EffectContract) else ""
        about = f"{node.contract_id}, a {node.kind.value} node{family}"
        error = {"error": {"$ref": _REFS.format(model="ErrorInfo")}}
        kinds = {
            "command": (
                cmd_topic(node_id),
                _envelope_with("cmd", node.payload_schema, {}),
                f"A command to {about}",
            ),
            "result": (
                evt_topic(node_id),
                _envelope_with("evt", node.result_schema, {}),
                f"A result of {about}: status ok with its payload, or error",
            ),
            "deadLetter": (
                dlq_topic(node_id),
                _envelope_with("dlq", None, error),
                f"A command {about} could not answer, with the reason",
            ),
        }
        refs: dict[str, dict[str, str]] = {}
        for kind, (topic, payload, summary) in kinds.items():
            name = f"{node_id}.{kind}"
            messages[name] = {
                "name": name,
                "title": f"{node_id} {kind}",
                "summary": summary,
                "contentType": "application/json",
                "payload": payload,
            }
            channel = f"{node_id}.{kind}"
            channels[channel] = {
                "address": topic,
                "messages": {kind: {"$ref": f"#/components/messages/{name}"}},
            }
            refs[kind] = {"$ref": f"#/channels/{channel}"}
        operations[f"{node_id}.handle"] = {
            "action": "receive",
            "channel": refs["command"],
            "summary": f"{node_id} handles each command: a result, or an error and a dead letter",
            "messages": [{"$ref": f"#/channels/{node_id}.command/messages/command"}],
            "reply": {
                "channel": refs["result"],
                "messages": [{"$ref": f"#/channels/{node_id}.result/messages/result"}],
            },
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"onex runtime {runtime.node_id}",
            "version": runtime.version,
            "description": (
                f"The nodes runtime {runtime.node_id} hosts, their command, result and "
                "dead-letter topics and messages (v1 envelopes). Written by `onex contracts "
                "asyncapi` from the contracts."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": bootstrap_servers.split(",")[0],
                "protocol": "kafka",
                "description": "The Kafka cluster (the config's kafka.bootstrap_servers)",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
