"""What a payload that is no JSON object is told: the field, what it held, the fix."""

from __future__ import annotations

import decimal

import pytest
from pydantic import ValidationError

from onex_actors.core import new_command, payload_problem

pytestmark = pytest.mark.unit


def _problem(payload: dict[object, object]) -> str:
    with pytest.raises(ValidationError) as refused:
        new_command("node", payload)  # type: ignore[arg-type]
    return payload_problem(refused.value)


def test_a_value_no_json_holds_is_named_by_its_path_and_type() -> None:
    told = _problem({"price": decimal.Decimal("1.5")})
    assert told.startswith("field 'payload.price' holds a decimal.Decimal (Decimal('1.5'))")
    told = _problem({"a": [{"b": {1, 2}}]})
    assert told.startswith("field 'payload.a[0].b' holds a builtins.set")


def test_a_key_that_is_not_text_is_named() -> None:
    assert _problem({3: "x"}) == "key 3 of the payload is not text; JSON objects' keys are strings"


def test_a_non_finite_number_keeps_its_own_message() -> None:
    assert _problem({"x": float("inf")}).startswith("field 'payload.x' is NaN or infinite")
