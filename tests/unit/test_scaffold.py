"""``onex contracts new``: a commented contract of each kind and family, valid as written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from onex_actors.cli import main
from onex_actors.core import (
    SCAFFOLD_FAMILIES,
    EffectContract,
    RuntimeHostContract,
    build_routing_table,
    contract_json_schema,
    parse_contract,
    scaffold,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("family", list(SCAFFOLD_FAMILIES))
def test_a_new_node_of_each_family_validates_and_a_runtime_can_host_it(family: str) -> None:
    text = scaffold("effect", f"new-{family}", family)
    assert text.startswith("# yaml-language-server: $schema=../../schemas/")
    node = parse_contract(yaml.safe_load(text), source="<scaffold>")
    assert isinstance(node, EffectContract)
    assert (node.node_id, node.effect_type.value) == (f"new-{family}", family)
    assert (
        list(Draft202012Validator(contract_json_schema()).iter_errors(yaml.safe_load(text))) == []
    )
    runtime = yaml.safe_load(
        scaffold("runtime", "runtime-new", hosts=[node.node_id], families=[family])
    )
    host = parse_contract(runtime, source="<scaffold>")
    assert isinstance(host, RuntimeHostContract)
    table = build_routing_table(host, {node.node_id: node})
    assert list(table.hosted) == [node.node_id]


@pytest.mark.parametrize("kind", ["compute", "reducer", "orchestrator"])
def test_a_new_pure_node_validates_and_a_runtime_can_host_it(kind: str) -> None:
    text = scaffold(kind, f"new-{kind}")
    document = yaml.safe_load(text)
    node = parse_contract(document, source="<scaffold>")
    assert node.kind.value == kind
    assert list(Draft202012Validator(contract_json_schema()).iter_errors(document)) == []
    runtime = yaml.safe_load(scaffold("runtime", "runtime-new", hosts=[node.node_id]))
    host = parse_contract(runtime, source="<scaffold>")
    assert isinstance(host, RuntimeHostContract)
    echo = parse_contract(
        {"kind": "effect", "node_id": "echo-node", "version": "0.1.0", "effect_type": "local"},
        source="<echo>",
    )
    nodes = {node.node_id: node, "echo-node": echo}  # the orchestrator's steps' node
    assert list(build_routing_table(host, nodes).hosted) == [node.node_id]  # type: ignore[arg-type]


def test_a_runtime_hosting_nothing_is_refused_saying_what_to_do() -> None:
    with pytest.raises(ValueError, match="would host no node: add a node first"):
        scaffold("runtime", "runtime-new")


def test_unknown_kinds_families_and_names_are_refused_saying_what_to_pass() -> None:
    with pytest.raises(
        ValueError, match=r"use 'effect', 'compute', 'reducer' or 'orchestrator' .* or 'runtime'"
    ):
        scaffold("workflow", "flow")
    with pytest.raises(ValueError, match="unknown effect family 'smtp': use one of local, http"):
        scaffold("effect", "mailer", "smtp")
    with pytest.raises(ValueError, match="is not a valid slug"):
        scaffold("effect", "Bad_Name")


def test_the_command_writes_once_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "contracts",
        "new",
        "effect",
        "fetch-page",
        "--family",
        "http",
        "--directory",
        str(tmp_path),
    ]
    with pytest.raises(SystemExit) as first:
        main(args)
    assert first.value.code == 0
    written = tmp_path / "nodes" / "fetch-page.yaml"
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith(f"wrote {written}: ")
    schema = tmp_path.parent / "schemas" / "onex-contract.schema.json"  # its first line's
    assert said[1:] == [
        f"note: editors complete and check it against {schema}, not written yet: "
        f"`onex contracts schema {schema}` writes it"
    ]
    assert (
        parse_contract(yaml.safe_load(written.read_text()), source=str(written)).node_id
        == "fetch-page"
    )
    written.write_text(written.read_text() + "# edited\n")
    with pytest.raises(SystemExit) as again:
        main(args)
    assert again.value.code == 1
    assert capsys.readouterr().out.startswith("error: ")
    assert written.read_text().endswith("# edited\n")
