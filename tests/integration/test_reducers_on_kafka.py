"""Reducers on a real broker: state in a compacted changelog, restored by the next host.

Both delivery modes, with the client the tier names (ONEX_TEST_KAFKA_CLIENT).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from tests.kafka_support import TEST_BROKER, NamespacedBus, new_namespace, open_test_kafka_bus

from onex_actors.app import HostConfig
from onex_actors.bridges.kafka._metadata import METADATA_BACKOFF_MS, prompt_metadata
from onex_actors.core import (
    PARTITION_KEY_HEADER,
    ConfigError,
    KeyState,
    NodeContract,
    RuntimeHostContract,
    cmd_topic,
    home_partition,
    parse_contract,
    state_topic,
)
from onex_actors.registry import FileRegistry, StaticRegistry
from onex_actors.runtime import ReducerHandler
from onex_actors.testing import HostHarness, open_test_host

pytestmark = [pytest.mark.integration]

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
NEEDS_TRANSACTIONS = pytest.mark.skipif(
    TEST_BROKER == "tansu", reason="tansu: no Kafka transactions (delivery: exactly_once)"
)
MODES = ["at_least_once", pytest.param("exactly_once", marks=NEEDS_TRANSACTIONS)]


ECHO_COUNTS = {
    "kind": "reducer",
    "node_id": "echo-counts",
    "version": "0.1.0",
    "key": "input.who",
    "input": {"events_of": ["echo-node"]},
    "fold": {"assign": {"n": "state.n + 1", "words": "state.words + [input.word]"}},
    "state": {"initial": {"n": 0, "words": []}},
}

GROUP_COUNTS = {
    "kind": "reducer",
    "node_id": "group-counts",
    "version": "0.1.0",
    "key": "input.group",
    "input": {"events_of": ["echo-node"]},
    "fold": {"assign": {"n": "state.n + 1"}},
    "state": {"initial": {"n": 0}},
}
"""A second reducer of echo-node's results, keyed otherwise (the first reads the topic)."""


def tree(*extra: dict[str, Any]) -> StaticRegistry:
    shipped = FileRegistry(CONTRACTS).tree
    nodes: dict[str, NodeContract] = dict(shipped.nodes)
    for document in extra:
        contract = parse_contract(document, source=f"<test:{document['node_id']}>")
        nodes[contract.node_id] = contract  # type: ignore[assignment]
    runtime = shipped.runtimes["runtime-dev-state"].model_dump()
    selected = [*runtime["host_selector"]["node_ids"], *(d["node_id"] for d in extra)]
    return StaticRegistry(
        [RuntimeHostContract.model_validate({**runtime, "host_selector": {"node_ids": selected}})],
        nodes.values(),
    )


@asynccontextmanager
async def host_on(
    bootstrap: str,
    namespace: str,
    mode: str,
    generation: int,
    disk: Path | None = None,
    contracts: StaticRegistry | None = None,
) -> AsyncIterator[HostHarness]:
    transactional = f"{namespace}-host-{generation}" if mode == "exactly_once" else None
    settings: dict[str, Any] = {"delivery": {"mode": mode}}
    if disk is not None:
        settings |= {"bus": {"kind": "kafka"}, "state": {"store": "disk", "path": str(disk)}}
    config = HostConfig.model_validate(settings)
    async with (
        open_test_kafka_bus(bootstrap, transactional_id=transactional) as inner,
        open_test_host(
            "runtime-dev-state",
            contracts=contracts or tree(),
            bus=NamespacedBus(inner, namespace),
            config=config,
        ) as host,
    ):
        yield host


def in_namespace(topic: str, namespace: str) -> str:
    """The real name of ``topic`` on the broker for a ``NamespacedBus`` of ``namespace``."""
    return topic.replace(".local.", f".{namespace}.", 1)


def totals_of(host: HostHarness, customers: set[str]) -> dict[str, Any]:
    handler = host.host.handlers["order-totals"]
    assert isinstance(handler, ReducerHandler)
    return {c: handler.state_of(c) for c in sorted(customers)}


@pytest.mark.parametrize(
    ("mode", "store"),
    [
        ("at_least_once", "memory"),
        pytest.param("exactly_once", "memory", marks=NEEDS_TRANSACTIONS),
        ("at_least_once", "disk"),
        pytest.param("exactly_once", "disk", marks=NEEDS_TRANSACTIONS),
    ],
)
async def test_state_survives_the_host_and_each_key_folds_once(
    kafka_bootstrap: str, mode: str, store: str, tmp_path: Path
) -> None:
    disk = tmp_path / "state" if store == "disk" else None
    namespace = new_namespace()
    rng = random.Random(11)
    sent: list[tuple[str, int]] = []

    async def send_some(host: HostHarness, count: int) -> None:
        commands = []
        for _ in range(count):
            customer, amount = f"c{rng.randrange(12)}", rng.randrange(1, 50)
            keyed = {PARTITION_KEY_HEADER: f"global/{customer}"} if rng.random() < 0.5 else {}
            commands.append(
                await host.send(
                    "order-totals", {"customer": customer, "amount": amount}, headers=keyed
                )
            )
            sent.append((customer, amount))
        for command in commands:
            assert (await host.result(command)).status.value == "ok"

    async with host_on(kafka_bootstrap, namespace, mode, 1, disk) as first:
        await send_some(first, 120)
    async with host_on(kafka_bootstrap, namespace, mode, 2, disk) as second:
        await send_some(second, 60)
        restorer = second.host.restorer
        assert restorer is not None
        restored_keys = sum(report.keys for report in restorer.restores)
        restored_records = sum(report.records for report in restorer.restores)
        from_checkpoints = [r.start for r in restorer.restores if r.start]
        state = totals_of(second, {c for c, _ in sent})
    if disk is not None:
        # a clean stop checkpointed the on-disk store: the restart read no changelog record
        # (nothing was written meanwhile) and started each partition after its checkpoint
        assert restored_records == 0
        assert from_checkpoints
    else:
        assert restored_records > 0
        assert from_checkpoints == []
    expected_total: Counter[str] = Counter()
    expected_orders: Counter[str] = Counter()
    for customer, amount in sent:
        expected_total[customer] += amount
        expected_orders[customer] += 1
    assert state == {
        c: {"orders": expected_orders[c], "total": expected_total[c]} for c in expected_total
    }
    assert restored_keys == len(expected_total)  # every key came back from the changelog
    real = in_namespace(state_topic("order-totals"), namespace)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        (described,) = admin.describe_topics([real])
        if TEST_BROKER != "tansu":  # tansu drops the connection on DescribeConfigs
            configs = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, real, ["cleanup.policy"])],
                config_filter="all",
            )
            assert configs["topic"][real]["cleanup.policy"]["value"] == "compact"
    finally:
        admin.close()
    assert len(described["partitions"]) == 4
    # the changelog holds, per key, its newest state in the key's own partition
    newest: dict[str, dict[str, Any]] = {}
    reader = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        consumer_timeout_ms=3_000,
    )
    try:
        partitions = [KafkaTopicPartition(real, p) for p in range(4)]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        for message in reader:
            assert message.partition == home_partition(message.key, 4)
            tenant, _, customer = message.key.decode().partition("/")
            assert tenant == "global"
            newest[customer] = dict(KeyState.from_bytes(message.value).value)
    finally:
        reader.close()
    assert newest == state


async def test_a_changelog_with_more_partitions_stops_the_start(kafka_bootstrap: str) -> None:
    namespace = new_namespace()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics(
            [
                NewTopic(
                    in_namespace(state_topic("account"), namespace),
                    8,
                    1,
                    topic_configs={"cleanup.policy": "compact"},
                )
            ]
        )
    finally:
        admin.close()
    with pytest.raises(BaseException) as info:  # noqa: PT011 - the leaf is checked below
        async with host_on(kafka_bootstrap, namespace, "at_least_once", 1):
            pass
    leaves = [info.value]
    while isinstance(leaves[-1], BaseExceptionGroup):
        leaves.append(leaves[-1].exceptions[0])
    assert isinstance(leaves[-1], ConfigError)
    assert "has 8 partitions but" in str(leaves[-1])
    assert "recreate the state topic with 4" in str(leaves[-1])


@pytest.mark.skipif(TEST_BROKER == "tansu", reason="tansu: no CreatePartitions")
async def test_a_command_topic_grown_past_its_changelog_folds_each_key_into_its_state(
    kafka_bootstrap: str,
) -> None:
    namespace = new_namespace()
    sent: Counter[str] = Counter()

    async def send_some(host: HostHarness, count: int) -> None:
        commands = []
        for i in range(count):
            customer = f"c{i % 10}"
            keyed = {PARTITION_KEY_HEADER: f"global/{customer}"} if i % 2 else {}
            payload = {"customer": customer, "amount": 1}
            commands.append(await host.send("order-totals", payload, headers=keyed))
            sent[customer] += 1
        for command in commands:
            assert (await host.result(command)).status.value == "ok"

    async with host_on(kafka_bootstrap, namespace, "at_least_once", 1) as first:
        await send_some(first, 40)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        real = in_namespace(cmd_topic("order-totals"), namespace)
        admin.create_partitions({real: NewPartitions(total_count=8)})
    finally:
        admin.close()
    async with host_on(kafka_bootstrap, namespace, "at_least_once", 2) as second:
        await send_some(second, 40)
        handler = second.host.handlers["order-totals"]
        assert isinstance(handler, ReducerHandler)
        assert handler.partitions == 4  # the changelog's: each key's state stays put
        assert handler.rekeyed > 0  # commands read from partitions 4-7 were sent on
        state = totals_of(second, set(sent))
    assert state == {c: {"orders": n, "total": n} for c, n in sent.items()}


def test_a_changelog_reader_asks_for_its_partitions_metadata_without_waiting(
    kafka_bootstrap: str,
) -> None:
    """kafka-python waits 100 ms after its bootstrap before it asks for a new topic's
    metadata; a changelog reader does not (``prompt_metadata``): this fails if a
    kafka-python upgrade moves what it sets."""
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None)
    try:
        assert prompt_metadata(consumer)
        consumer._cluster.request_update()  # a topic the reader did not know yet
        assert consumer._cluster.ttl() <= METADATA_BACKOFF_MS
    finally:
        consumer.close()


@pytest.mark.parametrize("mode", MODES)
async def test_reducers_fold_another_nodes_results_in_order_per_key(
    kafka_bootstrap: str, mode: str
) -> None:
    namespace = new_namespace()
    evt = "onex.app.local.global.evt.node.echo-counts.v1"
    group_evt = "onex.app.local.global.evt.node.group-counts.v1"
    sent: dict[str, list[str]] = {}
    groups: Counter[str] = Counter()
    contracts = tree(ECHO_COUNTS, GROUP_COUNTS)
    async with host_on(kafka_bootstrap, namespace, mode, 1, contracts=contracts) as host:
        commands = []
        for i in range(60):
            who, word, group = f"u{i % 7}", f"w{i}", f"g{i % 3}"
            sent.setdefault(who, []).append(word)
            groups[group] += 1
            # each user's echoes one after another, keyed by the user: their results come
            # in that order, in one partition of echo-node's evt topic
            keyed = {PARTITION_KEY_HEADER: who}
            payload = {"who": who, "word": word, "group": group}
            commands.append(await host.send("echo-node", payload, headers=keyed))
            if i % 7 == 6:
                for command in commands:
                    assert (await host.result(command)).status.value == "ok"
                commands = []
        for command in commands:
            assert (await host.result(command)).status.value == "ok"
        with trio.fail_after(60):
            await host.collector.wait_until(
                lambda: (
                    len(host.collector.by_topic[evt]) >= 60
                    and len(host.collector.by_topic[group_evt]) >= 60
                )
            )
        handler = host.host.handlers["echo-counts"]
        by_group = host.host.handlers["group-counts"]
        assert isinstance(handler, ReducerHandler)
        assert isinstance(by_group, ReducerHandler)
        states = {who: handler.state_of(who) for who in sent}
        group_states = {group: by_group.state_of(group) for group in groups}
        answers = len(host.collector.by_topic[evt]), len(host.collector.by_topic[group_evt])
    assert states == {who: {"n": len(words), "words": words} for who, words in sent.items()}
    assert group_states == {group: {"n": n} for group, n in groups.items()}
    assert answers == (60, 60)


SIGNUP = {
    "kind": "orchestrator",
    "node_id": "signup-flow",
    "version": "0.1.0",
    "workflow": {
        "steps": [
            {"name": "hello", "node_id": "echo-node", "payload": {"text": "'hi ' + input.user"}},
            {
                "name": "deposit",
                "node_id": "account",
                "depends_on": ["hello"],
                "payload": {
                    "account_id": "input.user",
                    "trigger": "'deposit'",
                    "amount": "input.amount",
                },
            },
            {
                "name": "quote",
                "node_id": "price-quote",
                "depends_on": ["hello"],
                "payload": {"net": "input.amount", "quantity": "2"},
            },
        ],
        "output": {
            "greeting": "steps.hello.output.text",
            "balance": "steps.deposit.output.state.balance",
            "quote": "steps.quote.output.line_total",
        },
    },
}


@pytest.mark.parametrize("mode", MODES)
async def test_workflows_run_across_nodes_on_kafka_and_each_answers_once(
    kafka_bootstrap: str, mode: str
) -> None:
    namespace = new_namespace()
    async with host_on(kafka_bootstrap, namespace, mode, 1, contracts=tree(SIGNUP)) as host:
        starts = [
            await host.send("signup-flow", {"user": f"user-{i}", "amount": 10 + i})
            for i in range(12)
        ]
        answers = [await host.result(start) for start in starts]
        with trio.fail_after(30):  # and nothing more than one answer each
            await host.collector.wait_until(
                lambda: sum(len(host.results_of(s)) for s in starts) >= 12 * 4
            )
        workflow_answers = [
            e for s in starts for e in host.results_of(s) if e.node_id == "signup-flow"
        ]
    assert [a.status.value for a in answers] == ["ok"] * 12
    assert [a.payload for a in answers] == [
        {"greeting": f"hi user-{i}", "balance": 10 + i, "quote": (10 + i) * 1.2 * 2}
        for i in range(12)
    ]
    assert len(workflow_answers) == 12


SIGNUP_PAIR = {
    "kind": "orchestrator",
    "node_id": "signup-pair-flow",
    "version": "0.1.0",
    "workflow": {
        "steps": [  # two instances of signup-flow at once, each its own
            {"name": "a", "node_id": "signup-flow", "payload": {"user": "input.a", "amount": "1"}},
            {"name": "b", "node_id": "signup-flow", "payload": {"user": "input.b", "amount": "2"}},
        ],
        "output": {"a": "steps.a.output.greeting", "b": "steps.b.output.greeting"},
    },
}


@pytest.mark.parametrize("mode", MODES)
async def test_workflows_run_other_workflows_as_steps_on_kafka_and_each_answers_once(
    kafka_bootstrap: str, mode: str
) -> None:
    namespace = new_namespace()
    contracts = tree(SIGNUP, SIGNUP_PAIR)
    async with host_on(kafka_bootstrap, namespace, mode, 1, contracts=contracts) as host:
        starts = [
            await host.send("signup-pair-flow", {"a": f"a-{i}", "b": f"b-{i}"}) for i in range(6)
        ]
        answers = [await host.result(start) for start in starts]

        def flows() -> Counter[str]:
            """The workflows' answers in the starts' flows (the signup-flows' on their topic)."""
            return Counter(
                e.node_id for s in starts for e in host.results_of(s) if e.node_id.endswith("-flow")
            )

        with trio.fail_after(30):
            await host.collector.wait_until(lambda: flows()["signup-flow"] >= 12)
    assert [a.payload for a in answers] == [{"a": f"hi a-{i}", "b": f"hi b-{i}"} for i in range(6)]
    assert flows() == {"signup-pair-flow": 6, "signup-flow": 12}
