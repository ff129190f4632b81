from __future__ import annotations

from pathlib import Path

import pytest

from onex_actors.core import ContractError, EffectContract
from onex_actors.registry import FileRegistry

RUNTIME = """\
kind: runtime_host
node_id: runtime-dev
version: "0.1.0"
subscriptions: {cmd_topics: ["onex.app.local.global.cmd.node.#"]}
handlers: {families: [local]}
host_selector: {node_ids: [echo-node]}
"""
ECHO = """\
kind: effect
node_id: echo-node
version: "0.1.0"
effect_type: local
"""


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def problems(root: Path) -> tuple[str, ...]:
    with pytest.raises(ContractError) as info:
        FileRegistry(root).node_contracts()
    return info.value.problems


def test_reads_the_shipped_contracts(repo_contracts: Path) -> None:
    registry = FileRegistry(repo_contracts)
    runtime = registry.runtime_contract("runtime-dev")
    assert runtime.host_selector.node_ids == (
        "echo-node",
        "http-proxy-node",
        "query-user",
        "price-quote",
        "account",
        "order-totals",
        "welcome-user",
    )
    nodes = registry.node_contracts()
    assert set(nodes) == {
        "echo-node",
        "http-proxy-node",
        "query-user",
        "summarize-text",
        "embed-text",
        "embed-doc",
        "embed-query",
        "index-doc",
        "search-docs",
        "account",
        "order-totals",
        "price-quote",
        "welcome-user",
        "digest-doc",
    }
    query = nodes["query-user"]
    assert isinstance(query, EffectContract)
    assert query.db is not None
    assert query.db.params == {"user_id": "$.payload.user_id"}
    assert registry.source_of("echo-node").endswith("nodes/echo-node.yaml")


def test_unknown_runtime_lists_known(tmp_path: Path) -> None:
    root = tree(tmp_path, {"runtime/runtime-dev.yaml": RUNTIME, "nodes/echo-node.yaml": ECHO})
    with pytest.raises(
        ContractError, match=r"no runtime contract 'prod' \(runtimes in .*: runtime-dev\)"
    ):
        FileRegistry(root).runtime_contract("prod")


def test_duplicate_node_id_names_both_files(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {"nodes/echo-node.yaml": ECHO, "nodes/echo-node.yml": ECHO},
    )
    (problem,) = problems(root)
    assert "echo-node.yml: key 'node_id': 'echo-node' is already defined in" in problem
    assert "echo-node.yaml" in problem


def test_missing_key_names_file_and_key(tmp_path: Path) -> None:
    root = tree(tmp_path, {"nodes/echo-node.yaml": ECHO.replace('version: "0.1.0"\n', "")})
    (problem,) = problems(root)
    assert problem == f"{root}/nodes/echo-node.yaml: missing required key 'version'"


def test_wrong_kind_and_misplaced_contracts(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "nodes/echo-node.yaml": ECHO.replace("kind: effect", "kind: gizmo"),
            "nodes/runtime-dev.yaml": RUNTIME,
        },
    )
    found = problems(root)
    assert any("echo-node.yaml: key 'kind': 'gizmo' is not a contract kind" in p for p in found)
    assert any(
        "runtime-dev.yaml: key 'kind': a runtime_host contract belongs under runtime/" in p
        for p in found
    )


def test_file_name_must_match_node_id(tmp_path: Path) -> None:
    root = tree(tmp_path, {"nodes/echo.yaml": ECHO})
    (problem,) = problems(root)
    assert "rename the file to echo-node.yaml" in problem


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    root = tree(tmp_path, {"nodes/echo-node.yaml": "kind: effect\nnode_id: [unclosed\n"})
    (problem,) = problems(root)
    assert "not valid YAML at line" in problem


def test_not_a_contract_tree(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path)
    assert "not a contract tree" in problem
