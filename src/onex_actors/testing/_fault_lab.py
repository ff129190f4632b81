"""``FaultLab``: where fault scenarios run, and what a scenario reports."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import attrs

from onex_actors.core import cmd_topic, dlq_topic, evt_topic, log_topic

from ._checker import DeliveryReport, SentRecord, check
from ._processes import host_env, host_process
from ._state_check import check_fold_state, check_workflow_answers, workflow_endings
from ._workload import (
    FOLD_NODE,
    NESTED_NODE,
    WORKFLOW_NODE,
    CommandStream,
    OutcomeReader,
    committed_offsets,
    create_topics,
    end_offsets,
)

__all__ = ["FaultLab", "ScenarioResult", "Setup", "StoppableServer"]


class StoppableServer(Protocol):
    """A server a scenario may stop and start again (``LocalKafka``, ``EmbeddedPostgres``)."""

    def start(self) -> Any:
        """Start the server (returns once it answers)."""
        ...

    def stop(self) -> None:
        """Stop the server."""
        ...


@attrs.define
class FaultLab:
    """Where scenarios run: a broker, a working directory, and the servers they may stop."""

    bootstrap: str
    workdir: Path
    broker: StoppableServer | None = None
    """The broker's process, for the broker-outage scenario."""
    postgres: StoppableServer | None = None
    postgres_dsn: str | None = None
    session_timeout_ms: int = 6_000
    client: str = "kafka-python"
    """The Kafka client the hosts use (``kafka.client``): kafka-python or confluent."""
    group_protocol: str = "auto"
    """The consumer group protocol of confluent hosts (``kafka.group_protocol``)."""
    deadline_s: float = 300
    """How long a scenario waits for every command to be accounted for."""
    delivery: str = "at_least_once"
    """The hosts' ``delivery.mode``: at_least_once or exactly_once."""
    workload: str = "echo"
    """The node under fault: ``echo`` (an effect), ``fold`` (a reducer, ``FOLD_NODE``:
    the state of every key is then checked against a fold computed by the harness),
    ``workflow`` (an orchestrator, ``WORKFLOW_NODE``: every start's answer is checked) or
    ``nested`` (an orchestrator whose step is that workflow, ``NESTED_NODE``)."""
    store: str = "memory"
    """The hosts' ``state.store``: ``memory``, or ``disk`` (each running host gets a folder
    of its own, and a host started after one ended takes the lowest free one: a restart
    finds its predecessor's files, as a pod with a volume does)."""
    _slots_in_use: set[int] = attrs.field(factory=set)
    _hosts_started: int = 0
    setups: list[Setup] = attrs.field(factory=list)
    """Every contract tree written, newest last."""
    host_env: dict[str, str] = attrs.field(factory=dict)
    """More environment for every host process (``ONEX_COMMIT_INTERVAL_S``...)."""

    @property
    def session_s(self) -> float:
        """The hosts' consumer-group session, in seconds."""
        return self.session_timeout_ms / 1000

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a host process of this lab."""
        more = {
            "ONEX_KAFKA__SESSION_TIMEOUT_MS": str(self.session_timeout_ms),
            "ONEX_KAFKA__CLIENT": self.client,
            "ONEX_KAFKA__GROUP_PROTOCOL": self.group_protocol,
            "ONEX_DELIVERY__MODE": self.delivery,
            **self.host_env,
            **extra,
        }
        if self.postgres_dsn is not None:
            more["ONEX_DATABASES__DEFAULT__DSN"] = self.postgres_dsn
        return host_env(self.bootstrap, **more)

    def contracts(
        self,
        name: str,
        nodes: Mapping[str, str],
        families: Sequence[str],
        main: str | None = None,
    ) -> Setup:
        """Write a contract tree: ``nodes`` (node id prefix → YAML body after ``node_id``).

        ``{tag}`` in a body is the suffix the node ids get; ``main`` names the prefix of
        the node the workload sends to, when there are several.

        Node and runtime ids get a fresh suffix, so no earlier run's topics or
        offsets are reused.
        """
        tag = uuid.uuid4().hex[:6]
        ids = {prefix: f"{prefix}-{tag}" for prefix in nodes}
        runtime = f"runtime-{name}-{tag}"
        root = self.workdir / f"{name}-{tag}"
        (root / "nodes").mkdir(parents=True)
        (root / "runtime").mkdir()
        for prefix, body in nodes.items():
            kind = "" if body.startswith("kind:") else "kind: effect\n"
            (root / "nodes" / f"{ids[prefix]}.yaml").write_text(
                f"{kind}node_id: {ids[prefix]}\nversion: '0.1.0'\n" + body.replace("{tag}", tag)
            )
        topics = ", ".join(f"'{cmd_topic(n)}'" for n in [*ids.values(), runtime])
        (root / "runtime" / f"{runtime}.yaml").write_text(
            f"kind: runtime_host\nnode_id: {runtime}\nversion: '0.1.0'\n"
            f"subscriptions: {{cmd_topics: [{topics}]}}\n"
            f"handlers: {{families: [{', '.join(families)}]}}\n"
            f"host_selector: {{node_ids: [{', '.join(ids.values())}]}}\n"
        )
        setup = Setup(runtime, ids, root, ids.get(main) if main else None)
        topics_needed = [log_topic(runtime), dlq_topic(runtime), evt_topic(runtime)]
        for node in ids.values():
            topics_needed += [cmd_topic(node), evt_topic(node), dlq_topic(node)]
        create_topics(self.bootstrap, topics_needed)
        self.setups.append(setup)
        return setup

    def echo(self, name: str, extra: str = "") -> Setup:
        """One local echo node (plus ``extra`` YAML) hosted by a fresh runtime.

        With ``workload: fold``, the reducer ``FOLD_NODE`` and the ``sink`` its intents go
        to instead (``extra`` ignored).
        """
        if self.workload == "fold":
            nodes = {"tally": FOLD_NODE, "sink": "effect_type: local\n"}
            return self.contracts(name, nodes, ["local"], "tally")
        if self.workload in ("workflow", "nested"):
            nodes = {
                "flow": WORKFLOW_NODE,
                "step1": "effect_type: local\n",
                "step2": "effect_type: local\n",
            }
            if self.workload == "nested":
                return self.contracts(name, {"nest": NESTED_NODE, **nodes}, ["local"], "nest")
            return self.contracts(name, nodes, ["local"], "flow")
        return self.contracts(name, {"echo": f"effect_type: local\n{extra}"}, ["local"])

    def stream(
        self, setup: Setup, count: int, *, batch: int = 500, rate: float | None = None
    ) -> CommandStream:
        """Commands for ``setup``'s node, shaped for the lab's workload."""
        return CommandStream(
            self.bootstrap,
            setup.node,
            count,
            batch=batch,
            rate=rate,
            fold=self.workload == "fold",
        )

    def with_state_checked(self, result: ScenarioResult) -> ScenarioResult:
        """Add the state check of the newest tree's reducer (``workload: fold``)."""
        if self.workload not in ("fold", "workflow", "nested") or not self.setups:
            return result
        if self.workload in ("workflow", "nested"):
            report = check_workflow_answers(self.bootstrap, self.setups[-1].node)
            note = f"{result.note}; {len(report.wrong)} of {report.keys} workflows wrong"
        else:
            setup = self.setups[-1]
            report = check_fold_state(self.bootstrap, setup.node, setup.nodes["sink"])
            note = f"{result.note}; {len(report.wrong)} of {report.keys} keys wrong"
        if report.wrong:
            note += f" (first: {report.wrong[0]})"
        return attrs.evolve(result, note=note, keys=report.keys, keys_wrong=len(report.wrong))

    def answered_at(self, setup: Setup, sent: Sequence[SentRecord]) -> dict[str, tuple[int, int]]:
        """Return where the record whose decision answers each sent command lies.

        That is its (partition, offset), by the command's id. A command answers itself;
        a workflow's start is answered when its last step's result is decided
        (``workflow_endings``), a record of its own.
        """
        at = {r.envelope_id: (r.partition, r.offset) for r in sent if r.envelope_id is not None}
        if self.workload == "workflow":
            at |= workflow_endings(self.bootstrap, setup.node, setup.nodes["step2"])
        elif self.workload == "nested":  # ended by the inner workflow's answer
            at |= workflow_endings(self.bootstrap, setup.node, setup.nodes["flow"])
        return at

    def another_runtime(self, setup: Setup, name: str) -> Setup:
        """Add a second runtime to ``setup``'s tree hosting the same nodes (its own group)."""
        runtime = f"runtime-{name}-{uuid.uuid4().hex[:6]}"
        source = (setup.root / "runtime" / f"{setup.runtime}.yaml").read_text()
        (setup.root / "runtime" / f"{runtime}.yaml").write_text(
            source.replace(setup.runtime, runtime)
        )
        create_topics(self.bootstrap, [log_topic(runtime), dlq_topic(runtime), evt_topic(runtime)])
        return Setup(runtime, setup.nodes, setup.root, setup.main)

    @contextmanager
    def host(
        self,
        setup: Setup,
        env: Mapping[str, str] | None = None,
        *,
        prefix: Sequence[str] = (),
        log: Path | None = None,
    ) -> Iterator[subprocess.Popen[str]]:
        """Run ``setup``'s runtime as a host process.

        ``env`` is added to the lab's; ``prefix`` runs it through another command
        (``ip netns exec``); its log goes to ``log``, by default a file of its own in
        the working directory's ``logs`` folder (``<runtime>-<n>.log``).
        """
        if log is None:
            self._hosts_started += 1
            log = self.workdir / "logs" / f"{setup.runtime}-{self._hosts_started}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
        more = dict(env or {})
        slot = None
        if self.store == "disk":
            slot = min(set(range(len(self._slots_in_use) + 1)) - self._slots_in_use)
            self._slots_in_use.add(slot)
            more |= {
                "ONEX_STATE__STORE": "disk",
                "ONEX_STATE__PATH": str(self.workdir / "state" / f"host-{slot}"),
            }
        try:
            with host_process(
                setup.runtime, setup.root, self.env(**more), prefix=prefix, log=log
            ) as proc:
                yield proc
        finally:
            if slot is not None:
                self._slots_in_use.discard(slot)

    def reader(self, setup: Setup) -> OutcomeReader:
        """Open a reader of the outcomes of ``setup``'s nodes and its runtime's dead letters."""
        nodes = [setup.main] if setup.main is not None else list(setup.nodes.values())
        return OutcomeReader(self.bootstrap, nodes, setup.runtime)

    def committed_to_end(self, setup: Setup, timeout_s: float = 30) -> bool:
        """Wait until ``setup``'s runtime has committed every command partition to its end."""
        topics = [cmd_topic(node) for node in setup.nodes.values()]
        ends = {topic: end_offsets(self.bootstrap, topic) for topic in topics}
        deadline = time.monotonic() + timeout_s
        while True:
            committed = {
                topic: committed_offsets(self.bootstrap, setup.runtime, topic) for topic in topics
            }
            if all(
                committed[topic].get(partition, 0) >= end
                for topic, by_partition in ends.items()
                for partition, end in by_partition.items()
            ):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    def settle(self, reader: OutcomeReader, sent: Sequence[SentRecord]) -> DeliveryReport:
        """Read until every sent record is accounted for (or the deadline), then check."""
        reader.read_until(lambda r: r.answered(sent) >= len(sent), self.deadline_s)
        reader.read_until(lambda r: False, 1.0)  # late duplicates, if any
        return check(sent, reader.outcomes)


@attrs.frozen
class Setup:
    """A contract tree: one runtime and its nodes (prefix → node id)."""

    runtime: str
    nodes: dict[str, str]
    root: Path
    main: str | None = None
    """The node the workload sends to, when there are several (a workflow and its steps)."""

    @property
    def node(self) -> str:
        """The node the workload sends to: the main one, or the only one."""
        if self.main is not None:
            return self.main
        (only,) = self.nodes.values()
        return only


@attrs.frozen
class ScenarioResult:
    """One scenario's outcome: the checker's report and what else was measured."""

    name: str
    report: DeliveryReport
    note: str
    host_survived: bool = True
    committed_to_end: bool = True
    """Whether the host's commits reached the end of every command partition."""
    longest_gap_s: float | None = None
    """Where measured: the longest time in which no outcome was produced at all."""
    takeover_s: float | None = None
    """Where a host was killed: seconds until every command partition answered again."""
    keys: int | None = None
    """With a reducer under fault: how many keys its commands had."""
    keys_wrong: int | None = None
    """With a reducer under fault: keys whose final state is not the fold of their commands."""

    @property
    def passed(self) -> bool:
        """Whether the scenario passed.

        Nothing lost, the host never crashed on its input, its commits went on, and (a
        reducer) every key's state is the fold of its commands.
        """
        return (
            self.report.passed
            and self.host_survived
            and self.committed_to_end
            and not self.keys_wrong
        )
