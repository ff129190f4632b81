"""Loops of then: edges are refused when contracts are loaded, naming files and keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.contracts import effect, runtime

from onex_actors.core import ContractError, build_routing_table, then_loops
from onex_actors.registry import load_tree

pytestmark = pytest.mark.unit


def _then(target: str) -> dict[str, object]:
    return {"then": {"node_id": target, "payload": {"n": "$.result.n"}}}


def _nodes(edges: dict[str, str | None]) -> dict[str, object]:
    return {
        node: effect(node, **(_then(target) if target else {})) for node, target in edges.items()
    }


@pytest.mark.parametrize(
    ("edges", "loops"),
    [
        ({"a": "a"}, [["a"]]),
        ({"a": "b", "b": "a"}, [["a", "b"]]),
        ({"c": "a", "a": "b", "b": "c"}, [["a", "b", "c"]]),
        ({"d": "a", "a": "b", "b": "a", "e": "f", "f": None}, [["a", "b"]]),
        ({"a": "b", "b": "c", "c": None}, []),
    ],
    ids=["one node", "two nodes", "three nodes", "a tail into a loop", "a chain"],
)
def test_loops_of_one_two_and_three_nodes_are_found(
    edges: dict[str, str | None], loops: list[list[str]]
) -> None:
    assert then_loops(_nodes(edges)) == loops  # type: ignore[arg-type]


@given(st.dictionaries(st.sampled_from("abcdef"), st.sampled_from("abcdefg"), max_size=6))
def test_every_node_on_a_cycle_is_in_exactly_one_loop_and_each_loop_is_a_cycle(
    edges: dict[str, str],
) -> None:
    loops = then_loops(_nodes(edges))  # type: ignore[arg-type]
    for loop in loops:
        for here, there in zip(loop, [*loop[1:], loop[0]], strict=True):
            assert edges[here] == there
    on_a_cycle = set()
    for start in edges:
        seen, node = [], start
        while node in edges and node not in seen:
            seen.append(node)
            node = edges[node]
        if node == start:
            on_a_cycle.add(start)
    listed = [node for loop in loops for node in loop]
    assert sorted(listed) == sorted(on_a_cycle)


def test_a_tree_with_a_loop_is_refused_naming_its_files(tmp_path: Path) -> None:
    (tmp_path / "nodes").mkdir()
    for node, target in (("ping", "pong"), ("pong", "ping")):
        (tmp_path / "nodes" / f"{node}.yaml").write_text(
            f"kind: effect\nnode_id: {node}\nversion: '0.1.0'\neffect_type: local\n"
            f"then: {{node_id: {target}, payload: {{n: $.result.n}}}}\n"
        )
    with pytest.raises(ContractError) as refused:
        load_tree(tmp_path)
    ping, pong = tmp_path / "nodes" / "ping.yaml", tmp_path / "nodes" / "pong.yaml"
    assert list(refused.value.problems) == [
        f"{ping}: key 'then.node_id': a loop of then: edges, ping -> pong -> ping ({ping}, "
        f"{pong}): each result would be forwarded for ever; end the chain at a node without "
        "then:"
    ]


def test_a_runtime_hosting_a_node_of_a_loop_is_refused() -> None:
    nodes = _nodes({"echo-node": "echo-node"})
    with pytest.raises(ContractError, match=r"a loop of then: edges, echo-node -> echo-node"):
        build_routing_table(runtime("echo-node"), nodes)  # type: ignore[arg-type]
