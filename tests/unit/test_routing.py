from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from tests.strategies import envelopes

from onex_actors.core import (
    ContractError,
    Delivery,
    NodeContract,
    OnexEnvelope,
    Rejection,
    RejectionReason,
    RoutingTable,
    RuntimeCommand,
    RuntimeHostContract,
    build_routing_table,
    cmd_topic,
    dlq_topic,
    new_command,
    parse_contract,
    route,
)


def node(node_id: str, **extra: Any) -> NodeContract:
    document = {"kind": "effect", "node_id": node_id, "version": "0.1.0", "effect_type": "local"}
    contract = parse_contract({**document, **extra}, source=f"{node_id}.yaml")
    assert not isinstance(contract, RuntimeHostContract)
    return contract


def runtime(
    node_ids: list[str],
    families: tuple[str, ...] = ("local", "http"),
    topics: tuple[str, ...] = (),
    consume: str = "hosted",
) -> RuntimeHostContract:
    contract = parse_contract(
        {
            "kind": "runtime_host",
            "node_id": "runtime-dev",
            "version": "0.1.0",
            "subscriptions": {
                "cmd_topics": list(topics or ["onex.app.local.global.cmd.node.#"]),
                "consume": consume,
            },
            "handlers": {"families": list(families)},
            "host_selector": {"node_ids": node_ids},
        },
        source="runtime-dev.yaml",
    )
    assert isinstance(contract, RuntimeHostContract)
    return contract


NODES: dict[str, NodeContract] = {
    "echo-node": node("echo-node"),
    "acme-only": node("acme-only", tenant_scope=["acme"]),
    "spare-node": node("spare-node"),
    "query-user": node("query-user", effect_type="db", db={"sql": "select 1", "params": {}}),
}


@pytest.fixture
def table() -> RoutingTable:
    return build_routing_table(runtime(["echo-node", "acme-only"]), NODES)


def test_a_hosted_runtime_subscribes_to_its_nodes_topics_and_its_own(table: RoutingTable) -> None:
    assert [p.text for p in table.subscription] == [
        cmd_topic("runtime-dev"),
        cmd_topic("echo-node"),
        cmd_topic("acme-only"),
    ]


def test_a_matching_runtime_subscribes_to_its_patterns_and_its_own_topic() -> None:
    everything = build_routing_table(runtime(["echo-node"], consume="matching"), NODES)
    assert [p.text for p in everything.subscription] == ["onex.app.local.global.cmd.node.#"]
    narrow = ("onex.app.local.global.cmd.node.echo-node.*",)
    narrowed = build_routing_table(runtime(["echo-node"], topics=narrow, consume="matching"), NODES)
    assert [p.text for p in narrowed.subscription] == [*narrow, cmd_topic("runtime-dev")]


def test_an_unknown_consume_mode_is_refused() -> None:
    with pytest.raises(ContractError, match="consume"):
        runtime(["echo-node"], consume="everything")


def test_command_to_hosted_node_is_delivered(table: RoutingTable) -> None:
    decision = route(new_command("echo-node", {}), table, topic=cmd_topic("echo-node"))
    assert isinstance(decision, Delivery)
    assert decision.node.node_id == "echo-node"
    assert decision.node.dlq_topic == dlq_topic("echo-node")


@pytest.mark.parametrize(
    ("envelope", "topic", "reason", "dlq"),
    [
        (new_command("nobody", {}), None, RejectionReason.UNKNOWN_NODE, dlq_topic("runtime-dev")),
        (new_command("spare-node", {}), None, RejectionReason.NOT_HOSTED, dlq_topic("runtime-dev")),
        (
            new_command("query-user", {}),
            None,
            RejectionReason.FAMILY_DISABLED,
            dlq_topic("runtime-dev"),
        ),
        (
            new_command("acme-only", {}, tenant_id="other"),
            None,
            RejectionReason.TENANT_OUT_OF_SCOPE,
            dlq_topic("acme-only"),
        ),
        (
            new_command("echo-node", {}),
            cmd_topic("acme-only"),
            RejectionReason.TOPIC_MISMATCH,
            dlq_topic("echo-node"),
        ),
    ],
)
def test_rejections(
    table: RoutingTable,
    envelope: OnexEnvelope,
    topic: str | None,
    reason: RejectionReason,
    dlq: str,
) -> None:
    decision = route(envelope, table, topic=topic)
    assert isinstance(decision, Rejection)
    assert decision.reason is reason
    assert decision.dlq_topic == dlq
    assert envelope.node_id in decision.message


def test_only_commands_are_routed(table: RoutingTable) -> None:
    cmd = new_command("echo-node", {})
    evt = OnexEnvelope.model_validate({**cmd.model_dump(), "type": "evt", "status": "ok"})
    decision = route(evt, table)
    assert isinstance(decision, Rejection)
    assert decision.reason is RejectionReason.NOT_A_COMMAND


def test_tenant_in_scope_is_delivered(table: RoutingTable) -> None:
    assert isinstance(route(new_command("acme-only", {}, tenant_id="acme"), table), Delivery)


def test_command_to_the_runtime_itself(table: RoutingTable) -> None:
    decision = route(new_command("runtime-dev", {"op": "discover"}), table)
    assert decision == RuntimeCommand("runtime-dev")


@given(envelopes())
def test_route_never_raises(envelope: OnexEnvelope) -> None:
    table = build_routing_table(runtime(["echo-node", "acme-only"]), NODES)
    assert isinstance(route(envelope, table), Delivery | Rejection | RuntimeCommand)
    assert isinstance(
        route(envelope, table, topic="not.an.onex.topic"), Delivery | Rejection | RuntimeCommand
    )


def test_build_reports_every_problem_once() -> None:
    nodes = {
        **NODES,
        "flow-node": parse_contract(
            {
                "kind": "orchestrator",
                "node_id": "flow-node",
                "version": "0.1.0",
                "workflow": {"steps": [{"name": "echo", "node_id": "nobody"}]},
            },
            source="o.yaml",
        ),
    }
    contract = runtime(
        ["echo-node", "ghost", "query-user", "flow-node"],
        topics=("onex.app.local.global.cmd.node.query-user.v1",),
    )
    with pytest.raises(ContractError) as info:
        build_routing_table(contract, nodes, source="contracts/runtime/runtime-dev.yaml")  # type: ignore[arg-type]
    problems = info.value.problems
    assert len(problems) == 4
    assert all(p.startswith("contracts/runtime/runtime-dev.yaml: key ") for p in problems)
    assert "no pattern matches onex.app.local.global.cmd.node.echo-node.v1" in problems[0]
    assert "no node contract for 'ghost'" in problems[1]
    assert "needs handler family 'db'" in problems[2]
    # an orchestrator is hosted like any node: its topic must match, its steps exist
    assert "no pattern matches onex.app.local.global.cmd.node.flow-node.v1" in problems[3]


def test_runtime_id_may_not_collide_with_a_node() -> None:
    nodes = {**NODES, "runtime-dev": node("runtime-dev")}
    with pytest.raises(ContractError, match="runtime id 'runtime-dev' is also a node id"):
        build_routing_table(runtime(["echo-node"]), nodes)
