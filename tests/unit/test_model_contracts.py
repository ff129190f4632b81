"""The llm, embedding and vector contract sections, ``then`` and the pure helpers behind them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tests.contracts import effect

from onex_actors.core import (
    ContractError,
    HandlerError,
    MissingValue,
    ThenCommand,
    forwarded_command,
    new_command,
    parse_contract,
)
from onex_actors.handlers import point_id, render_messages

LLM: dict[str, Any] = {
    "model": "m",
    "messages": {"system": "Be brief.", "user": "Summarize {text} for {who}"},
    "params": {"text": "$.payload.text", "who": "$.payload.reader"},
}


def llm_node(**changes: Any) -> Any:
    return effect("summ", effect_type="llm", llm={**LLM, **changes})


def contract_error(document: dict[str, Any]) -> str:
    with pytest.raises(ContractError) as info:
        parse_contract(
            {"kind": "effect", "node_id": "n", "version": "0.1.0", **document}, source="n.yaml"
        )
    return str(info.value)


def test_a_placeholder_without_a_param_names_it_and_the_fix() -> None:
    message = contract_error(
        {"effect_type": "llm", "llm": {**LLM, "params": {"text": "$.payload.text"}}}
    )
    assert "{who}" in message
    assert 'who: "$.payload.who"' in message


def test_a_param_no_message_uses_is_refused() -> None:
    params = {**LLM["params"], "extra": "$.payload.x"}
    assert "llm.params maps extra" in contract_error(
        {"effect_type": "llm", "llm": {**LLM, "params": params}}
    )


def test_a_json_schema_needs_json_output() -> None:
    message = contract_error({"effect_type": "llm", "llm": {**LLM, "json_schema": {}}})
    assert "set output: json" in message


def test_an_upsert_needs_an_id_and_a_search_takes_no_payload() -> None:
    base = {"collection": "docs", "size": 3}
    assert "needs vector.id" in contract_error(
        {"effect_type": "vector", "vector": {**base, "operation": "upsert"}}
    )
    assert "belong to upsert" in contract_error(
        {
            "effect_type": "vector",
            "vector": {**base, "operation": "search", "payload": {"t": "$.payload.t"}},
        }
    )


def test_then_paths_start_at_the_command_or_the_result() -> None:
    with pytest.raises(ValueError, match=r"must start with \$\.command or \$\.result"):
        ThenCommand(node_id="next", payload={"v": "$.payload.v"})


def test_messages_are_filled_from_the_payload_never_evaluated() -> None:
    command = new_command(
        "summ", {"text": "{__import__('os')} and {{braces}}", "reader": {"name": "Ada"}}
    )
    messages = render_messages(llm_node().llm, command)
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": 'Summarize {__import__(\'os\')} and {{braces}} for {"name": "Ada"}',
        },
    ]


def test_a_missing_placeholder_value_is_a_clear_non_retryable_error() -> None:
    with pytest.raises(HandlerError) as info:
        render_messages(llm_node().llm, new_command("summ", {"text": "t"}))
    assert info.value.error_type == "missing_parameter"
    assert not info.value.retryable
    assert "llm.params.who ($.payload.reader)" in str(info.value)


def test_a_forwarded_command_is_the_same_envelope_each_time() -> None:
    then = ThenCommand(
        node_id="index-doc",
        payload={"id": "$.command.payload.id", "vector": "$.result.vector"},
    )
    cause = new_command("embed-doc", {"id": "d1", "text": "t"})
    first = forwarded_command(cause, {"vector": [0.5, 1.0]}, then)
    again = forwarded_command(cause, {"vector": [0.5, 1.0]}, then)
    assert first.envelope_id == again.envelope_id
    assert first.envelope_id != cause.envelope_id
    assert first.node_id == "index-doc"
    assert first.payload == {"id": "d1", "vector": [0.5, 1.0]}
    assert first.correlation_id == cause.correlation_id
    assert first.causation_id == cause.envelope_id
    with pytest.raises(MissingValue):
        forwarded_command(cause, {}, then)


def test_point_ids_are_integers_uuids_or_derived_from_text() -> None:
    known = "0b6a7c1e-96f1-4d2e-9a51-2c1f6d5e4b3a"
    assert point_id(7) == 7
    assert point_id(known) == known
    assert point_id("doc-1") == point_id("doc-1")
    assert uuid.UUID(str(point_id("doc-1")))
    assert point_id("doc-1") != point_id("doc-2")
    for wrong in (-1, True, "", 1.5, None):
        with pytest.raises(ValueError, match="point id"):
            point_id(wrong)
