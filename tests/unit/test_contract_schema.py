"""The editors' JSON Schema of contract files: current, valid, and true to the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from onex_actors.core import SCHEMA_FILE, contract_json_schema

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "contracts").glob("*/*.yaml"))


def _validator() -> Draft202012Validator:
    schema = json.loads((REPO / SCHEMA_FILE).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_the_written_schema_is_what_the_models_say_now() -> None:
    written = json.loads((REPO / SCHEMA_FILE).read_text())
    assert written == contract_json_schema(), "stale: run `onex contracts schema` and commit it"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_contract_names_the_schema_and_satisfies_it(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../schemas/onex-contract.schema.json"
    assert (path.parent / first.split("=", 1)[1]).resolve() == REPO / SCHEMA_FILE
    assert list(_validator().iter_errors(yaml.safe_load(path.read_text()))) == []


def test_a_wrong_key_is_reported_against_the_kind_the_file_declares() -> None:
    validator = _validator()
    effect = {"kind": "effect", "node_id": "n", "version": "0.1.0", "effect_type": "local"}
    assert list(validator.iter_errors(effect)) == []
    errors = list(validator.iter_errors({**effect, "retry": {"max_attempts": 0}}))
    assert [list(e.absolute_path) for e in errors] == [["retry", "max_attempts"]]
    (misspelt,) = validator.iter_errors({**effect, "timout_s": 3})
    assert "timout_s" in misspelt.message
    (unknown,) = validator.iter_errors({**effect, "kind": "effector"})
    assert list(unknown.absolute_path) == ["kind"]
