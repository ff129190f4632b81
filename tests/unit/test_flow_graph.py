"""``onex contracts graph``: the flow as Mermaid, and the README's copy of it kept current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.contracts import effect, runtime

from onex_actors.core import cmd_topic, flow_graph, parse_contract
from onex_actors.registry import load_tree

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_a_then_edge_runs_from_a_node_into_the_next_nodes_command_topic() -> None:
    first = effect("first", then={"node_id": "second", "payload": {"n": "$.result.n"}})
    second = effect("second")
    graph = flow_graph(
        {"r": runtime("first", "second", runtime_id="r")}, {"first": first, "second": second}
    )
    lines = graph.splitlines()
    assert lines[0] == "flowchart LR"
    assert '    n_first["first<br/>effect (local)"]' in lines
    assert f'  cmd_second[/"{cmd_topic("second")}"/]' in lines
    assert "  cmd_first --> n_first" in lines
    assert "  n_first -- then --> cmd_second" in lines
    assert "  cmd_second --> n_second" in lines
    assert "  n_second --> evt_second" in lines
    assert "  n_second -. dead letters .-> dlq_second" in lines
    assert sum("then" in line for line in lines) == 1


def test_workflow_steps_reducer_intents_and_events_of_are_edges_too() -> None:
    tree = load_tree(REPO / "contracts")
    graph = flow_graph({"runtime-dev": tree.runtimes["runtime-dev"]}, tree.nodes)
    lines = graph.splitlines()
    assert "  n_welcome_user -- step lookup --> cmd_query_user" in lines
    assert "  n_welcome_user -- step deposit --> cmd_account" in lines
    assert "  n_welcome_user -- undo deposit --> cmd_account" in lines
    assert "  n_account -- intent --> cmd_echo_node" in lines  # closing an account says so
    counts = {
        "kind": "reducer",
        "node_id": "echo-counts",
        "version": "0.1.0",
        "key": "input.who",
        "input": {"events_of": ["echo-node"]},
        "fold": {"assign": {"n": "state.n + 1"}},
        "state": {"initial": {"n": 0}},
    }
    nodes = {"echo-counts": parse_contract(counts, source="echo-counts.yaml")}
    folded = flow_graph({"r": runtime("echo-counts", runtime_id="r")}, nodes).splitlines()
    assert "  evt_echo_node -- events --> n_echo_counts" in folded


def test_the_readme_shows_the_graph_the_command_prints_today() -> None:
    readme = (REPO / "README.md").read_text()
    (shown,) = re.findall(r"```mermaid\n(.*?)```", readme, re.S)
    tree = load_tree(REPO / "contracts")
    printed = flow_graph({"runtime-dev-llm": tree.runtimes["runtime-dev-llm"]}, tree.nodes)
    assert shown == printed, "run `onex contracts graph runtime-dev-llm` into the README"
