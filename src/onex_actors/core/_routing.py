"""Routing: which hosted node a command goes to, or why it is rejected (pure).

``build_routing_table`` checks a runtime contract against the node contracts once, at
start-up; ``route`` then decides for each envelope without raising.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping

import attrs

from ._compute_contract import ComputeContract
from ._contracts import ConsumeMode, EffectContract, EffectFamily, RuntimeHostContract
from ._envelope import EnvelopeType, OnexEnvelope
from ._errors import ContractError, TopicError
from ._flows import (
    command_loop_problem,
    command_loops,
    loop_problem,
    then_loops,
    workflow_loop_problem,
    workflow_loops,
)
from ._node_contracts import HostableContract, NodeContract
from ._reducer_contract import ReducerContract
from ._topics import Topic, TopicPattern, cmd_topic, dlq_topic, evt_topic, log_topic
from ._workflow_contract import OrchestratorContract

__all__ = [
    "Delivery",
    "HostedNode",
    "Rejection",
    "RejectionReason",
    "Route",
    "RoutingTable",
    "RuntimeCommand",
    "build_routing_table",
    "route",
]


@attrs.frozen
class HostedNode:
    """A node this runtime hosts, with the topics it answers on."""

    contract: HostableContract
    cmd_topic: str
    evt_topic: str
    dlq_topic: str
    then_topic: str | None = None
    """The command topic of the node its ``then`` forwards to, if it has one."""
    intent_topics: Mapping[str, str] = attrs.field(factory=dict)
    """A reducer's intents, an orchestrator's steps: the command topic of each node they
    send commands to."""
    reply_topics: Mapping[str, str] = attrs.field(factory=dict)
    """Each orchestrator of the tree and its command topic: where a result goes too when
    its command names that orchestrator in ``onex-reply-to`` (a step's command)."""

    @property
    def node_id(self) -> str:
        """The node's id."""
        return self.contract.node_id

    @property
    def family(self) -> EffectFamily | None:
        """The handler family that runs this node (``None`` for the pure kinds)."""
        contract = self.contract
        return contract.effect_type if isinstance(contract, EffectContract) else None

    @property
    def runs_as(self) -> str:
        """What runs the node, for people: its family, or its kind for the pure kinds."""
        family = self.family
        return family.value if family is not None else self.contract.kind.value

    @property
    def pure(self) -> bool:
        """Whether the node is one of the pure kinds (its outputs derive from its input)."""
        return not isinstance(self.contract, EffectContract)

    @property
    def keeps_state(self) -> bool:
        """Whether the node keeps keyed state in a changelog (a reducer, an orchestrator)."""
        return isinstance(self.contract, ReducerContract | OrchestratorContract)


@attrs.frozen
class RoutingTable:
    """What one runtime hosts, checked against the whole contract tree."""

    runtime: RuntimeHostContract
    hosted: Mapping[str, HostedNode]
    known: Mapping[str, NodeContract]
    patterns: tuple[TopicPattern, ...]
    deliveries: Mapping[str, Delivery] = attrs.field(init=False, eq=False, repr=False)
    """The one ``Delivery`` of each hosted node (a decision is data; no need for more)."""
    event_readers: Mapping[str, Delivery] = attrs.field(init=False, eq=False, repr=False)
    """Each evt topic hosted reducers fold (``input.events_of``) → the first of them
    (``event_folders``); and
    each hosted orchestrator's own command topic, where its steps' results come back."""

    event_folders: Mapping[str, tuple[str, ...]] = attrs.field(init=False, eq=False, repr=False)
    """Each node whose results hosted reducers fold (``input.events_of``) → those
    reducers, in node id order. The first reads the node's evt topic here and sends each
    result on to every one of them (one read of the topic for the whole runtime)."""

    def __attrs_post_init__(self) -> None:
        deliveries = {node_id: Delivery(node) for node_id, node in self.hosted.items()}
        object.__setattr__(self, "deliveries", deliveries)
        folders: dict[str, list[str]] = {}
        for node_id, node in sorted(self.hosted.items()):
            if isinstance(node.contract, ReducerContract):
                for source in node.contract.input.events_of:
                    folders.setdefault(source, []).append(node_id)
        object.__setattr__(
            self, "event_folders", {source: tuple(ids) for source, ids in folders.items()}
        )
        readers = {evt_topic(source): deliveries[ids[0]] for source, ids in folders.items()}
        readers |= {
            node.cmd_topic: deliveries[node_id]
            for node_id, node in self.hosted.items()
            if isinstance(node.contract, OrchestratorContract)
        }
        object.__setattr__(self, "event_readers", readers)

    @property
    def runtime_id(self) -> str:
        """The runtime's id."""
        return self.runtime.node_id

    @property
    def effects(self) -> dict[str, EffectContract]:
        """The contracts of the hosted effect nodes (the ones that need handlers built)."""
        return {
            node_id: node.contract
            for node_id, node in self.hosted.items()
            if isinstance(node.contract, EffectContract)
        }

    @property
    def families(self) -> frozenset[EffectFamily]:
        """Handler families the runtime enables."""
        return frozenset(self.runtime.handlers.families)

    @property
    def subscription(self) -> tuple[TopicPattern, ...]:
        """What the runtime's consumer subscribes to.

        Its own command topic always (discover, health); then its hosted nodes' command
        topics, or with ``consume: matching`` every pattern of the contract; and the evt
        topics its reducers fold (``input.events_of``).
        """
        own = TopicPattern(cmd_topic(self.runtime_id))
        own_topics = {node.cmd_topic for node in self.hosted.values()}
        events = tuple(TopicPattern(t) for t in self.event_readers if t not in own_topics)
        if self.runtime.subscriptions.consume is ConsumeMode.MATCHING:
            if any(pattern.matches(own.text) for pattern in self.patterns):
                return (*self.patterns, *events)
            return (*self.patterns, own, *events)
        return (own, *(TopicPattern(node.cmd_topic) for node in self.hosted.values()), *events)

    @property
    def log_topic(self) -> str:
        """The runtime's log topic."""
        return log_topic(self.runtime_id)

    @property
    def runtime_dlq_topic(self) -> str:
        """Dead letters that belong to no hosted node go here."""
        return dlq_topic(self.runtime_id)


class RejectionReason(enum.StrEnum):
    """Why an envelope cannot be delivered; also the error type of its dead letter."""

    NOT_A_COMMAND = "not_a_command"
    UNKNOWN_NODE = "unknown_node"
    NOT_HOSTED = "not_hosted"
    FAMILY_DISABLED = "family_disabled"
    TENANT_OUT_OF_SCOPE = "tenant_out_of_scope"
    TOPIC_MISMATCH = "topic_mismatch"


@attrs.frozen
class Delivery:
    """Deliver the envelope to the inbox of ``node``."""

    node: HostedNode


@attrs.frozen
class RuntimeCommand:
    """The envelope is addressed to the runtime itself (e.g. discovery)."""

    runtime_id: str


@attrs.frozen
class Rejection:
    """The envelope cannot be delivered; it belongs in a dead-letter topic."""

    reason: RejectionReason
    message: str
    dlq_topic: str


Route = Delivery | RuntimeCommand | Rejection


def route(envelope: OnexEnvelope, table: RoutingTable, *, topic: str | None = None) -> Route:
    """Decide where ``envelope`` goes. Never raises for a decoded envelope.

    ``topic``, when given, is the topic the envelope was read from; a command whose
    ``node_id`` disagrees with its topic is rejected rather than silently re-routed.
    """
    if topic is not None and envelope.type is EnvelopeType.EVT:
        reader = table.event_readers.get(topic)
        if reader is not None:
            return reader
    node_id = envelope.node_id
    hosted = table.hosted.get(node_id)
    dlq = hosted.dlq_topic if hosted else table.runtime_dlq_topic
    if envelope.type is not EnvelopeType.CMD:
        return Rejection(
            RejectionReason.NOT_A_COMMAND,
            f"envelope {envelope.envelope_id} is a {envelope.type.value!r}; "
            "only 'cmd' envelopes are routed",
            dlq,
        )
    if topic is not None and (mismatch := _topic_mismatch(topic, node_id)):
        return Rejection(RejectionReason.TOPIC_MISMATCH, mismatch, dlq)
    if node_id == table.runtime_id:
        return RuntimeCommand(node_id)
    if hosted is None:
        return _not_hosted(node_id, table)
    if hosted.contract.tenant_scope != "global" and not hosted.contract.accepts_tenant(
        envelope.tenant_id
    ):
        return Rejection(
            RejectionReason.TENANT_OUT_OF_SCOPE,
            f"tenant {envelope.tenant_id!r} is outside the tenant_scope of node {node_id!r} "
            f"({', '.join(hosted.contract.tenant_scope)})",
            dlq,
        )
    return table.deliveries[node_id]


@functools.lru_cache(maxsize=4096)
def _parsed_topic(topic: str) -> Topic | None:
    try:
        return Topic.parse(topic)
    except TopicError:
        return None


def _topic_mismatch(topic: str, node_id: str) -> str | None:
    parsed = _parsed_topic(topic)
    if parsed is None:
        return None  # a custom subscription outside the onex grammar: trust node_id
    if parsed.type == "cmd" and parsed.target == "node" and parsed.slug != node_id:
        return f"envelope for node {node_id!r} arrived on topic {topic}, which is {parsed.slug!r}'s"
    return None


def _not_hosted(node_id: str, table: RoutingTable) -> Rejection:
    dlq = table.runtime_dlq_topic
    contract = table.known.get(node_id)
    if contract is None:
        return Rejection(
            RejectionReason.UNKNOWN_NODE,
            f"no contract for node {node_id!r} in the contract tree of runtime "
            f"{table.runtime_id!r}",
            dlq,
        )
    if isinstance(contract, EffectContract) and contract.effect_type not in table.families:
        return Rejection(
            RejectionReason.FAMILY_DISABLED,
            f"node {node_id!r} needs handler family {contract.effect_type.value!r}, "
            f"which runtime {table.runtime_id!r} does not enable",
            dlq,
        )
    return Rejection(
        RejectionReason.NOT_HOSTED,
        f"node {node_id!r} is not hosted by runtime {table.runtime_id!r} "
        "(not in its host_selector)",
        dlq,
    )


def build_routing_table(
    runtime: RuntimeHostContract,
    nodes: Mapping[str, NodeContract],
    *,
    source: str | None = None,
    node_sources: Mapping[str, str] | None = None,
) -> RoutingTable:
    """Check ``runtime`` against the node contracts and build its routing table.

    Raises one ``ContractError`` listing every problem, one line each: a selected node
    with no contract, a node that is not an effect, a family the runtime does not
    enable, a node whose command topic no subscription matches. ``source`` and
    ``node_sources`` (node id to file) name the files in the problems.
    """
    where = source or f"runtime {runtime.node_id!r}"
    files = node_sources or {}

    def node_at(node_id: str) -> str:
        return files.get(node_id) or f"node {node_id!r}"

    patterns = runtime.subscriptions.patterns
    reply_topics = {
        node_id: cmd_topic(node_id)
        for node_id, contract in nodes.items()
        if isinstance(contract, OrchestratorContract)
    }
    problems: list[str] = []
    hosted: dict[str, HostedNode] = {}
    for node_id in runtime.host_selector.node_ids:
        key = f"{where}: key 'host_selector.node_ids'"
        contract = nodes.get(node_id)
        if contract is None:
            known = ", ".join(sorted(nodes)) or "none"
            problems.append(f"{key}: no node contract for {node_id!r} (known nodes: {known})")
            continue
        if (
            isinstance(contract, EffectContract)
            and contract.effect_type not in runtime.handlers.families
        ):
            problems.append(
                f"{key}: node {node_id!r} needs handler family {contract.effect_type.value!r}; "
                f"add it to 'handlers.families' or drop the node"
            )
            continue
        node_cmd_topic = cmd_topic(node_id)
        if not any(p.matches(node_cmd_topic) for p in patterns):
            problems.append(
                f"{where}: key 'subscriptions.cmd_topics': no pattern matches {node_cmd_topic}, "
                f"so node {node_id!r} would never receive a command"
            )
            continue
        then = contract.then if isinstance(contract, EffectContract | ComputeContract) else None
        targets = [("then.node_id", then.node_id)] if then is not None else []
        if isinstance(contract, ReducerContract):
            targets += [("intents.node_id", intent.node_id) for intent in contract.intents]
            targets += [("input.events_of", source) for source in contract.input.events_of]
        if isinstance(contract, OrchestratorContract):
            for index, step in enumerate(contract.workflow.steps):
                where_step = f"workflow.steps.{index} ({step.name})"
                targets.append((f"{where_step}.node_id", step.node_id))
                if step.compensate is not None:
                    targets.append((f"{where_step}.compensate.node_id", step.compensate.node_id))
        missing = [(where, target) for where, target in targets if target not in nodes]
        if missing:
            known = ", ".join(sorted(nodes)) or "none"
            problems += [
                f"{node_at(node_id)}: key {key!r}: no node contract for {target!r} "
                f"(known nodes: {known})"
                for key, target in missing
            ]
            continue
        hosted[node_id] = HostedNode(
            contract,
            node_cmd_topic,
            evt_topic(node_id),
            dlq_topic(node_id),
            cmd_topic(then.node_id) if then is not None else None,
            {node: cmd_topic(node) for node in _sends_to(contract)},
            reply_topics,
        )
    if runtime.node_id in nodes:
        problems.append(
            f"{where}: runtime id {runtime.node_id!r} is also a node id; ids must be unique"
        )
    problems += [
        loop_problem(loop, {node_id: node_at(node_id) for node_id in loop})
        for loop in then_loops(nodes)
        if hosted.keys() & set(loop)
    ]
    problems += [
        workflow_loop_problem(loop, {node_id: node_at(node_id) for node_id in loop})
        for loop in workflow_loops(nodes)
        if hosted.keys() & set(loop)
    ]
    problems += [
        command_loop_problem(loop, {node_id: node_at(node_id) for node_id, _ in loop})
        for loop in command_loops(nodes)
        if hosted.keys() & {node_id for node_id, _ in loop}
    ]
    if problems:
        raise ContractError(problems)
    return RoutingTable(runtime=runtime, hosted=hosted, known=dict(nodes), patterns=patterns)


def _sends_to(contract: HostableContract) -> tuple[str, ...]:
    """Return the nodes a pure node sends commands to (a reducer's intents, a workflow's)."""
    if isinstance(contract, ReducerContract):
        return tuple(dict.fromkeys(intent.node_id for intent in contract.intents))
    if isinstance(contract, OrchestratorContract):
        return contract.step_nodes
    return ()
