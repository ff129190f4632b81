from __future__ import annotations

import sys
from pathlib import Path

import pytest

from onex_actors.cli import app


def run(*argv: str) -> object:
    return app(list(argv), result_action="return_value")


def test_validate_the_shipped_tree(
    repo_contracts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("contracts", "validate", str(repo_contracts)) == 0
    out = capsys.readouterr().out
    assert "runtime runtime-dev@0.1.0: hosts echo-node, http-proxy-node, query-user" in out
    assert "runtime runtime-dev-light@0.1.0: hosts echo-node, http-proxy-node" in out
    assert "node    query-user@0.1.0: effect (db)" in out
    for option in ("--directory", "--contracts-dir"):  # as the other commands name it
        assert run("contracts", "validate", option, str(repo_contracts)) == 0
    assert (
        "runtime runtime-dev-llm@0.1.0: hosts summarize-text, embed-text, embed-doc, "
        "embed-query, index-doc, search-docs"
    ) in out
    assert "node    summarize-text@0.1.0: effect (llm)" in out
    # two runtimes host echo-node: on one cluster both would answer each of its commands
    assert (
        "note: echo-node is hosted by runtime-dev, runtime-dev-light, runtime-dev-state: one "
        "answers it at a time" in out
    )
    assert "query-user is hosted by" not in out
    shown = repo_contracts.resolve().relative_to(Path.cwd().resolve())
    assert out.rstrip().endswith(f"ok: 4 runtime(s), 14 node(s) in {shown}")


def test_validate_reports_each_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runtime").mkdir()
    (tmp_path / "runtime" / "runtime-dev.yaml").write_text(
        "kind: runtime_host\nnode_id: runtime-dev\nversion: '0.1.0'\n"
        "subscriptions: {cmd_topics: ['onex.#']}\nhandlers: {families: [local]}\n"
        "host_selector: {node_ids: [ghost]}\n"
    )
    assert run("contracts", "validate", str(tmp_path)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("error: ")
    assert "no node contract for 'ghost'" in out[0]
    assert out[-1] == f"1 problem(s) in {tmp_path}"


def test_a_node_sending_to_a_node_without_a_contract_is_named_by_its_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "runtime").mkdir()
    (tmp_path / "nodes").mkdir()
    (tmp_path / "runtime" / "runtime-dev.yaml").write_text(
        "kind: runtime_host\nnode_id: runtime-dev\nversion: '0.1.0'\n"
        "subscriptions: {cmd_topics: ['onex.#']}\nhandlers: {families: [local]}\n"
        "host_selector: {node_ids: [tally]}\n"
    )
    tally = tmp_path / "nodes" / "tally.yaml"
    tally.write_text(
        "kind: reducer\nnode_id: tally\nversion: '0.1.0'\nkey: input.k\n"
        "state: {initial: {n: 0}}\n"
        "fold: {assign: {n: state.n + 1}, intents: [{node_id: ghost, payload: {n: state.n}}]}\n"
    )
    assert run("contracts", "validate", str(tmp_path)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"error: {tally}: key 'intents.node_id': no node contract for 'ghost' (known nodes: tally)"
    )


@pytest.mark.parametrize(
    ("node", "kind"), [("echo-node", "an effect"), ("price-quote", "a compute")]
)
def test_state_of_a_node_that_keeps_none_says_so_without_asking_kafka(
    node: str, kind: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEX_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9")  # nothing listens
    assert run("state", node, "a1") == 1
    said = capsys.readouterr().err
    assert f"error: {node} is {kind} node (" in said
    assert "it keeps no state; `onex state` reads a reducer's keys" in said


def test_a_new_runtime_hosts_the_nodes_no_runtime_hosts_and_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = str(tmp_path)
    assert run("contracts", "new", "runtime", "rt", "--directory", tree) == 1
    assert capsys.readouterr().out.startswith("error: runtime 'rt' would host no node")
    for kind, name in [("reducer", "tally"), ("effect", "fetch")]:
        family = ["--family", "http"] if kind == "effect" else []
        assert run("contracts", "new", kind, name, *family, "--directory", tree) == 0
    assert run("contracts", "new", "runtime", "rt", "--directory", tree) == 0
    assert "wrote " in capsys.readouterr().out
    written = (tmp_path / "runtime" / "rt.yaml").read_text()
    assert 'families: ["http"]' in written
    assert 'node_ids: ["fetch", "tally"]' in written
    assert run("contracts", "validate", tree) == 0
    assert run("contracts", "new", "runtime", "rt2", "--directory", tree) == 1
    assert "every node of" in capsys.readouterr().out
    assert run("contracts", "new", "runtime", "rt3", "--hosts", "ghost", "--directory", tree) == 1
    assert "--hosts 'ghost': no node contract in" in capsys.readouterr().out
    assert run("contracts", "new", "runtime", "rt3", "--hosts", "tally", "--directory", tree) == 0


def test_a_new_orchestrator_calls_a_node_of_its_tree_and_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = str(tmp_path)
    assert run("contracts", "new", "orchestrator", "flow", "--directory", tree) == 1
    assert capsys.readouterr().out == (
        f"error: an orchestrator's steps call other nodes, and {tree} has none: add one "
        "first (onex contracts new effect NAME)\n"
    )
    assert run("contracts", "new", "reducer", "tally", "--directory", tree) == 0
    assert run("contracts", "new", "effect", "greet", "--directory", tree) == 0
    assert run("contracts", "new", "orchestrator", "flow", "--directory", tree) == 0
    written = (tmp_path / "nodes" / "flow.yaml").read_text()
    assert written.splitlines()[1] == "# Node flow: an orchestrator node."
    assert written.count("node_id: greet") == 2  # the echo node, before the reducer
    assert run("contracts", "new", "runtime", "rt", "--directory", tree) == 0
    capsys.readouterr()
    assert run("contracts", "validate", tree) == 0


def test_a_step_calling_a_missing_node_is_named_by_its_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = str(tmp_path)
    assert run("contracts", "new", "effect", "greet", "--directory", tree) == 0
    assert run("contracts", "new", "orchestrator", "flow", "--directory", tree) == 0
    assert run("contracts", "new", "runtime", "rt", "--directory", tree) == 0
    flow = tmp_path / "nodes" / "flow.yaml"
    flow.write_text(
        flow.read_text().replace(
            "node_id: greet\n      depends_on", "node_id: gret\n      depends_on"
        )
    )
    capsys.readouterr()
    assert run("contracts", "validate", tree) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        f"error: {flow}: key 'workflow.steps.1 (second).node_id': no node contract for "
        "'gret' (known nodes: flow, greet)"
    )


def test_a_compute_function_in_the_projects_own_package_is_found_and_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module beside contracts/ imports as the host imports it; a wrong name is refused."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # restored after
    package = tmp_path / "pricing_rules_for_test"
    package.mkdir()
    (package / "__init__.py").write_text("def quote(payload):\n    return {'n': payload['n']}\n")
    tree = tmp_path / "contracts"
    assert run("contracts", "new", "compute", "price", "--directory", str(tree)) == 0
    assert run("contracts", "new", "runtime", "rt", "--directory", str(tree)) == 0
    price = tree / "nodes" / "price.yaml"
    text = price.read_text()
    body = text[: text.index("compute:")] + "compute:\n  function: pricing_rules_for_test:quote\n"
    price.write_text(body)
    capsys.readouterr()
    assert run("contracts", "validate", str(tree)) == 0
    assert sys.path[-1] == str(tmp_path)  # last: it hides no installed package
    price.write_text(body.replace(":quote", ":quot"))
    assert run("contracts", "validate", str(tree)) == 1
    assert capsys.readouterr().out.splitlines()[-2] == (
        f"error: {price}: node 'price': key 'compute.function' "
        "('pricing_rules_for_test:quot'): module 'pricing_rules_for_test' has no function 'quot'"
    )


def test_a_host_runs_the_trees_one_runtime_unless_told(tmp_path: Path) -> None:
    from onex_actors.cli._client import default_runtime

    tree = str(tmp_path)
    assert default_runtime(tmp_path) == "runtime-dev"  # no tree: the start says why
    assert run("contracts", "new", "effect", "greet", "--directory", tree) == 0
    assert run("contracts", "new", "runtime", "rt", "--directory", tree) == 0
    assert default_runtime(tmp_path) == "rt"
    assert run("contracts", "new", "runtime", "rt2", "--hosts", "greet", "--directory", tree) == 0
    assert default_runtime(tmp_path) == "runtime-dev"  # two: the start lists them
