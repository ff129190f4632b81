"""``onex contracts asyncapi``: an AsyncAPI 3.0 document that the AsyncAPI schema accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

from onex_actors.cli import main
from onex_actors.core import asyncapi_document, cmd_topic, dlq_topic, evt_topic
from onex_actors.registry import load_tree

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
TREE = load_tree(REPO / "contracts")
VALIDATOR = Draft7Validator(
    json.loads((REPO / "tests" / "data" / "asyncapi-3.0.0.schema.json").read_text())
)


@pytest.mark.parametrize("runtime", sorted(TREE.runtimes))
def test_each_shipped_runtime_is_a_valid_asyncapi_3_document(runtime: str) -> None:
    document = asyncapi_document(TREE.runtimes[runtime], TREE.nodes)
    assert [error.message for error in VALIDATOR.iter_errors(document)] == []
    hosted = TREE.runtimes[runtime].host_selector.node_ids
    assert sorted(document["operations"]) == sorted(f"{n}.handle" for n in hosted)
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {t(n) for n in hosted for t in (cmd_topic, evt_topic, dlq_topic)}


def test_a_broken_document_is_refused_by_the_schema() -> None:
    document = asyncapi_document(TREE.runtimes["runtime-dev"], TREE.nodes)
    document["operations"]["echo-node.handle"]["action"] = "eat"
    assert list(VALIDATOR.iter_errors(document))


def test_a_nodes_payload_schema_is_inside_its_command_message() -> None:
    document = asyncapi_document(TREE.runtimes["runtime-dev-llm"], TREE.nodes)
    command = document["components"]["messages"]["embed-doc.command"]["payload"]
    envelope, fields = command["allOf"]
    assert envelope == {"$ref": "#/components/schemas/OnexEnvelope"}
    assert fields["properties"]["payload"] == TREE.nodes["embed-doc"].payload_schema
    assert fields["properties"]["type"] == {"const": "cmd"}
    dead = document["components"]["messages"]["embed-doc.deadLetter"]["payload"]["allOf"][1]
    assert dead["properties"]["error"] == {"$ref": "#/components/schemas/ErrorInfo"}


def test_the_command_writes_yaml_or_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("api.yaml", "api.json"):
        with pytest.raises(SystemExit) as done:
            main(["contracts", "asyncapi", "runtime-dev", "--out", str(tmp_path / name)])
        assert done.value.code == 0
    assert capsys.readouterr().out.count("7 operations, 21 channels") == 2
    as_yaml = yaml.safe_load((tmp_path / "api.yaml").read_text())
    assert as_yaml == json.loads((tmp_path / "api.json").read_text())
    assert as_yaml["asyncapi"] == "3.0.0"
