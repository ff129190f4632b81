"""Loops of then: edges, and workflows starting one another in a loop, are refused when
contracts are loaded, naming files and keys."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.contracts import effect, runtime

from onex_actors.core import (
    ContractError,
    NodeContract,
    build_routing_table,
    command_loop_problem,
    command_loops,
    parse_contract,
    then_loops,
    workflow_loops,
)
from onex_actors.registry import load_tree

pytestmark = pytest.mark.unit


def _then(target: str) -> dict[str, object]:
    return {"then": {"node_id": target, "payload": {"n": "$.result.n"}}}


def problems_loading(root: Path) -> list[str]:
    """The problems ``load_tree(root)`` refuses the tree with (it must refuse it)."""
    with pytest.raises(ContractError) as refused:
        load_tree(root)
    return list(refused.value.problems)


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
    problems = problems_loading(tmp_path)
    ping, pong = tmp_path / "nodes" / "ping.yaml", tmp_path / "nodes" / "pong.yaml"
    assert problems == [
        f"{ping}: key 'then.node_id': a loop of then: edges, ping -> pong -> ping ({ping}, "
        f"{pong}): each result would be forwarded for ever; end the chain at a node without "
        "then:"
    ]


def test_a_runtime_hosting_a_node_of_a_loop_is_refused() -> None:
    nodes = _nodes({"echo-node": "echo-node"})
    with pytest.raises(ContractError, match=r"a loop of then: edges, echo-node -> echo-node"):
        build_routing_table(runtime("echo-node"), nodes)  # type: ignore[arg-type]


# -- workflows that start one another as steps ------------------------------------------


def _workflows(edges: dict[str, list[str]]) -> dict[str, NodeContract]:
    """An orchestrator per key, a step to each node it lists; the rest echo nodes."""
    nodes: dict[str, NodeContract] = {}
    for node, targets in edges.items():
        steps = [{"name": f"s{i}", "node_id": t} for i, t in enumerate([*targets, "echo"])]
        nodes[node] = parse_contract(
            {
                "kind": "orchestrator",
                "node_id": node,
                "version": "0.1.0",
                "workflow": {"steps": steps},
            },
            source=f"{node}.yaml",
        )
    nodes["echo"] = effect("echo")
    return nodes


@pytest.mark.parametrize(
    ("edges", "loops"),
    [
        ({"a": ["a"]}, [["a"]]),
        ({"a": ["b"], "b": ["a"]}, [["a", "b"]]),
        ({"a": ["b"], "b": ["c", "echo"], "c": ["a"]}, [["a", "b", "c"]]),
        ({"a": ["b"], "b": ["c"], "c": []}, []),
        ({"a": ["b", "c"], "b": ["c"], "c": []}, []),
        ({"d": ["a"], "a": ["b"], "b": ["a"]}, [["a", "b"]]),
    ],
    ids=["its own step", "two", "three", "nested three deep", "a diamond", "a tail into a loop"],
)
def test_workflows_starting_one_another_in_a_loop_are_found(
    edges: dict[str, list[str]], loops: list[list[str]]
) -> None:
    assert workflow_loops(_workflows(edges)) == loops


@given(
    st.dictionaries(
        st.sampled_from("abcde"), st.lists(st.sampled_from("abcde"), max_size=3), max_size=5
    )
)
def test_each_workflow_first_on_a_loop_has_one_and_each_is_a_loop(
    edges: dict[str, list[str]],
) -> None:
    loops = workflow_loops(_workflows(edges))
    for loop in loops:
        assert loop[0] == min(loop)
        for here, there in zip(loop, [*loop[1:], loop[0]], strict=True):
            assert there in edges[here]
    # n is first on a loop if n reaches itself through nodes after it (transitive closure)
    first_on_a_loop = set()
    for n in edges:
        reach = {t for t in edges[n] if t in edges and t >= n}
        while True:
            more = {t for m in reach if m != n for t in edges[m] if t in edges and t >= n}
            if more <= reach:
                break
            reach |= more
        if n in reach:
            first_on_a_loop.add(n)
    assert [loop[0] for loop in loops] == sorted(first_on_a_loop)


def test_a_tree_whose_workflows_start_one_another_is_refused_naming_its_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "nodes").mkdir()
    (tmp_path / "nodes" / "pay-flow.yaml").write_text(
        "kind: orchestrator\nnode_id: pay-flow\nversion: '0.1.0'\n"
        "workflow: {steps: [{name: refund, node_id: refund-flow}]}\n"
    )
    (tmp_path / "nodes" / "refund-flow.yaml").write_text(  # through a compensation
        "kind: orchestrator\nnode_id: refund-flow\nversion: '0.1.0'\n"
        "workflow: {steps: [{name: a, node_id: refund-flow-echo,\n"
        "  compensate: {node_id: pay-flow}}]}\n"
    )
    (tmp_path / "nodes" / "refund-flow-echo.yaml").write_text(
        "kind: effect\nnode_id: refund-flow-echo\nversion: '0.1.0'\neffect_type: local\n"
    )
    problems = problems_loading(tmp_path)
    pay, refund = tmp_path / "nodes" / "pay-flow.yaml", tmp_path / "nodes" / "refund-flow.yaml"
    assert problems == [
        f"{pay}: key 'workflow.steps': a loop of workflows, pay-flow -> refund-flow -> "
        f"pay-flow ({pay}, {refund}): each instance would start another for ever; a workflow "
        "may be another's step only where none of its steps leads back to it"
    ]


def test_a_runtime_hosting_a_workflow_of_a_loop_is_refused() -> None:
    nodes = _workflows({"a-flow": ["a-flow"]})
    with pytest.raises(ContractError, match=r"a loop of workflows, a-flow -> a-flow"):
        build_routing_table(runtime("a-flow"), nodes)  # type: ignore[arg-type]


# -- loops of commands through reducers -------------------------------------------------


def _reducer(
    node: str, events_of: Sequence[str] = (), intents: Sequence[str] = (), fsm: bool = False
) -> NodeContract:
    """A reducer folding ``events_of``'s results, sending ``intents`` (a state machine's
    transition's, with ``fsm``, else a fold's) with each command."""
    sends = [{"node_id": target} for target in intents]
    logic: dict[str, Any] = {
        "fold": {"assign": {"n": "state.n + 1"}, "intents": sends},
        "state": {"initial": {"n": 0}},
    }
    if fsm:
        logic = {
            "fsm": {
                "states": ["open"],
                "initial_state": "open",
                "trigger": "input.trigger",
                "transitions": [
                    {
                        "transition_name": "ping",
                        "from_state": "open",
                        "to_state": "open",
                        "trigger": "ping",
                        "intents": sends,
                    }
                ],
            },
            "state": {"initial": {}},
        }
    return parse_contract(
        {
            "kind": "reducer",
            "node_id": node,
            "version": "0.1.0",
            "key": "input.k",
            "input": {"events_of": list(events_of)},
            **logic,
        },
        source=f"{node}.yaml",
    )


def _tree(*contracts: NodeContract) -> dict[str, NodeContract]:
    return {contract.node_id: contract for contract in contracts}


def test_reducers_folding_each_others_results_are_a_loop_said_where_it_is_declared() -> None:
    nodes = _tree(_reducer("ping", events_of=["pong"]), _reducer("pong", events_of=["ping"]))
    (loop,) = command_loops(nodes)
    assert loop == [("ping", "events_of"), ("pong", "events_of")]
    assert command_loop_problem(loop, {"ping": "ping.yaml", "pong": "pong.yaml"}) == (
        "pong.yaml: key 'input.events_of': a loop of commands, ping -events_of-> pong "
        "-events_of-> ping (ping.yaml, pong.yaml): each answer would make the next command "
        "for ever; end the loop at a node that sends nothing on"
    )


@pytest.mark.parametrize(
    ("nodes", "loops"),
    [
        (  # a fold's intent to an effect that forwards back to it
            lambda: _tree(_reducer("r", intents=["e"]), effect("e", **_then("r"))),
            [[("e", "then"), ("r", "intent")]],
        ),
        (  # a fold sending to the node whose results it folds
            lambda: _tree(_reducer("r", events_of=["e"], intents=["e"]), effect("e")),
            [[("e", "events_of"), ("r", "intent")]],
        ),
        (  # a state machine's intents: its transitions decide, no loop by themselves
            lambda: _tree(_reducer("r", events_of=["e"], intents=["e"], fsm=True), effect("e")),
            [],
        ),
        (  # folding results with no way back
            lambda: _tree(_reducer("r", events_of=["e"], intents=["sink"]), effect("e")),
            [],
        ),
        (  # then: alone is then_loops' to say
            lambda: _tree(effect("a", **_then("b")), effect("b", **_then("a"))),
            [],
        ),
        (  # b reached by then: first, and again through the reducer
            lambda: _tree(
                effect("a", **_then("b")),
                effect("b", **_then("a")),
                _reducer("c", events_of=["a"], intents=["b"]),
            ),
            [[("a", "events_of"), ("c", "intent"), ("b", "then")]],
        ),
        (  # a then: loop through a reducer's loop is no loop of its own: b's, said once
            lambda: _tree(
                effect("a", **_then("c")),
                _reducer("b", events_of=["c"], intents=["b", "c"]),
                effect("c", **_then("a")),
            ),
            [[("b", "intent")]],
        ),
    ],
    ids=[
        "intent and then",
        "intent and events_of",
        "a state machine",
        "no way back",
        "then",
        "a then: loop crossed by a fold",
        "a walk through two loops",
    ],
)
def test_loops_through_a_reducer_are_found(
    nodes: Callable[[], dict[str, NodeContract]], loops: list[list[tuple[str, str]]]
) -> None:
    assert command_loops(nodes()) == loops


def test_a_compute_nodes_then_loop_is_found_too() -> None:
    looping = parse_contract(
        {
            "kind": "compute",
            "node_id": "c",
            "version": "0.1.0",
            "compute": {"output": {"n": "input.n"}},
            **_then("c"),
        },
        source="c.yaml",
    )
    assert then_loops({"c": looping}) == [["c"]]


@st.composite
def _sending_trees(draw: st.DrawFn) -> tuple[dict[str, NodeContract], set[tuple[str, str, str]]]:
    """Effects forwarding by then: and folds with intents and events_of; and their edges."""
    names = "abcd"
    contracts, edges = [], set()
    for node in names:
        if draw(st.booleans()):
            target = draw(st.none() | st.sampled_from(names))
            contracts.append(effect(node, **(_then(target) if target else {})))
            if target:
                edges.add((node, target, "then"))
        else:
            others = [n for n in names if n != node]
            sources = draw(st.lists(st.sampled_from(others), unique=True, max_size=2))
            targets = draw(st.lists(st.sampled_from(names), unique=True, max_size=2))
            contracts.append(_reducer(node, events_of=sources, intents=targets))
            edges |= {(s, node, "events_of") for s in sources}
            edges |= {(node, t, "intent") for t in targets}
    return _tree(*contracts), edges


@settings(max_examples=300)
@given(_sending_trees())
def test_every_knot_of_looping_commands_is_reported_once_by_a_simple_loop(
    drawn: tuple[dict[str, NodeContract], set[tuple[str, str, str]]],
) -> None:
    nodes, edges = drawn
    loops = command_loops(nodes)
    for loop in loops:
        members = [node for node, _ in loop]
        assert len(set(members)) == len(members)  # no node twice
        assert members[0] == min(members)
        assert any(how != "then" for _, how in loop)
        following = [*members[1:], members[0]]
        for (here, how), there in zip(loop, following, strict=True):
            assert (here, there, how) in edges
    # by brute force: the knots (mutually reachable nodes) holding a simple cycle with an
    # edge other than then; each must be reported, once
    reach = {(a, b) for a, b, _ in edges if a in nodes and b in nodes}
    for middle in nodes:
        reach |= {(a, b) for a, m in reach if m == middle for m2, b in reach if m2 == middle}

    def knot(node: str) -> frozenset[str]:
        return frozenset(
            {node} | {other for other in nodes if (node, other) in reach and (other, node) in reach}
        )

    looping = set()
    for size in range(1, len(nodes) + 1):
        for cycle in itertools.permutations(sorted(nodes), size):
            pairs = list(zip(cycle, [*cycle[1:], cycle[0]], strict=True))
            kinds = [{how for a, b, how in edges if (a, b) == pair} for pair in pairs]
            if all(kinds) and any(k - {"then"} for k in kinds):
                looping.add(knot(cycle[0]))
    reported = [knot(loop[0][0]) for loop in loops]
    assert len(set(reported)) == len(reported)
    assert set(reported) == looping


def test_a_runtime_hosting_a_reducer_of_a_loop_is_refused() -> None:
    nodes = _tree(_reducer("ping", events_of=["pong"]), _reducer("pong", events_of=["ping"]))
    with pytest.raises(ContractError, match=r"a loop of commands, ping -events_of-> pong"):
        build_routing_table(runtime("ping"), nodes)  # type: ignore[arg-type]


def test_a_tree_whose_reducers_fold_each_others_results_is_refused_naming_its_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "nodes").mkdir()
    for node, other in (("ping", "pong"), ("pong", "ping")):
        (tmp_path / "nodes" / f"{node}.yaml").write_text(
            f"kind: reducer\nnode_id: {node}\nversion: '0.1.0'\nkey: input.k\n"
            f"input: {{events_of: [{other}]}}\nfold: {{assign: {{n: state.n + 1}}}}\n"
            "state: {initial: {n: 0}}\n"
        )
    problems = problems_loading(tmp_path)
    ping, pong = tmp_path / "nodes" / "ping.yaml", tmp_path / "nodes" / "pong.yaml"
    (problem,) = problems
    assert problem.startswith(
        f"{pong}: key 'input.events_of': a loop of commands, ping -events_of-> pong "
        f"-events_of-> ping ({ping}, {pong})"
    )
