"""``OrchestratorHandler``: workflow instances decided a slice at a time, kept like reducer keys.

An instance lives under ``<tenant>/<correlation_id>`` in the partition of the
orchestrator's command topic that Kafka's default partitioner gives that name, in a
``KeyedStore`` with its changelog, restored and timed as a reducer's keys are. Three
kinds of record reach it there: a start command; a step's result, which the host that
answered the step also wrote to this topic (the step command names the orchestrator in
``onex-reply-to`` and is keyed by the instance, so its result lands in the instance's
partition); and a timer. A record read in another partition is sent on to the right one.
The workflow's result is written to the orchestrator's evt topic when it ends, answering
the start command (``onex emit`` waits for it); nothing else is answered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from functools import partial

from pydantic import JsonValue

from onex_actors.core import (
    GLOBAL_TENANT,
    PARTITION_KEY_HEADER,
    WORKFLOW_ENDED,
    ConfigError,
    EnvelopeType,
    ErrorInfo,
    HandlerError,
    KeyState,
    OnexEnvelope,
    OrchestratorContract,
    ReduceContext,
    StepTiming,
    WorkflowDecision,
    WorkflowEngine,
    as_failed_result,
    cmd_topic,
    home_partition,
    instance_of,
    reply_to_of,
    result_command,
    stored_key,
)

from ._health import STEP_BUCKETS_S, Durations
from ._outbox import over_the_limit
from ._ports import HandlerHealth, OutboundRecord, PureOutcome, Record
from ._state import KeyedStore, due_at, oversized
from ._state_store import StateStore

__all__ = ["OrchestratorHandler"]

NOTHING = PureOutcome(None)


class _SliceTally:
    """What deciding one slice counted: added to the handler's counters once it is decided."""

    __slots__ = ("counts", "rekeyed", "timings")

    def __init__(self) -> None:
        self.rekeyed = 0
        self.counts: Counter[str] = Counter()
        self.timings: list[StepTiming] = []


class OrchestratorHandler:
    """Folds start commands, step results and timers into workflow instances."""

    def __init__(
        self,
        contract: OrchestratorContract,
        *,
        cmd_topic: str,
        evt_topic: str,
        state_topic: str,
        partitions: int = 1,
        states: StateStore | None = None,
        reply_topics: Mapping[str, str] | None = None,
    ) -> None:
        self.engine = WorkflowEngine(contract)
        self.node_id = contract.node_id
        self.store = KeyedStore(states, due=partial(due_at, ttl_s=None))
        self.cmd_topic = cmd_topic
        self.evt_topic = evt_topic
        self.state_topic = state_topic
        self.partitions = partitions
        """Partitions of the command topic (set when the host has checked the changelog)."""
        self.record_limit: int | None = None
        """The largest record the changelog takes (set with ``partitions``; none: no limit)."""
        self.reply_topics: Mapping[str, str] = reply_topics or {}
        """The command topic of each orchestrator of the contract tree: where the result
        of an instance another workflow's step started goes too."""
        self.rekeyed = 0
        """Records read off their instance's partition and sent on to it."""
        self.timed = True
        """Steps time out: the timer scan reads this store's deadlines."""
        self.counts: dict[str, int] = {}
        """Commands that changed nothing, by why (``duplicate``, ``late``, ...); and
        instances ``started``, ``completed``, ``failed``, ``compensated``..."""
        self.step_durations: dict[tuple[str, str], Durations] = {}
        """Step attempts ended here, by step and outcome (``ok``, ``error``,
        ``timed_out``): seconds from the step's command to its result or timeout."""

    def expires_at(self, state: KeyState) -> str | None:
        """Return ``None``: instances have no TTL (an ended one stays, to be inspected)."""
        return None

    def decide_batch(
        self, inputs: Sequence[tuple[OnexEnvelope, Record | None]]
    ) -> list[PureOutcome | HandlerError]:
        """Decide each record in order (see the module).

        If deciding fails part-way, no state written for the slice stays.
        """
        tally = _SliceTally()
        with self.store.a_slice():
            outcomes = self._decide_each(inputs, tally)
        # counted once the slice is decided: a slice that raised is decided again
        self.rekeyed += tally.rekeyed
        for note, count in tally.counts.items():
            self.counts[note] = self.counts.get(note, 0) + count
        for timing in tally.timings:
            durations = self.step_durations.get((timing.step, timing.outcome))
            if durations is None:
                durations = Durations(STEP_BUCKETS_S)
                self.step_durations[timing.step, timing.outcome] = durations
            durations.observe(timing.seconds)
        return outcomes

    def _decide_each(
        self, inputs: Sequence[tuple[OnexEnvelope, Record | None]], tally: _SliceTally
    ) -> list[PureOutcome | HandlerError]:
        store = self.store
        counts = tally.counts
        outcomes: list[PureOutcome | HandlerError] = []
        for envelope, record in inputs:
            partition = record.partition if record is not None else 0
            if record is not None and partition not in store.owned:
                outcomes.append(NOTHING)
                continue
            command = (
                result_command(self.node_id, envelope)
                if envelope.type is EnvelopeType.EVT
                else envelope
            )
            instance = instance_of(command)
            stored = stored_key(command.tenant_id, instance)
            home = home_partition(stored.encode(), self.partitions)
            if home != partition:
                tally.rekeyed += 1
                headers = {**command.headers, PARTITION_KEY_HEADER: stored}
                copy = command.model_copy(update={"headers": headers})
                outcomes.append(PureOutcome(None, ((copy, self.cmd_topic, home),)))
                continue
            offset = record.offset if record is not None else None
            before = store.get(partition, stored)
            ctx = ReduceContext(partition, offset)
            decision = self.engine.decide(before, command, ctx)
            if decision.note is not None:
                counts[decision.note] += 1
            if decision.note == "exists":
                outcomes.append(self._exists(instance, decision.state))
                continue
            written: tuple[OutboundRecord, ...] = ()
            if decision.changed and decision.state is not None and offset is not None:
                value = decision.state.to_bytes()
                key_bytes = stored.encode()
                if size := oversized(value, key_bytes, self.record_limit):
                    failed = self._failed_instead(before, command, ctx, instance, key_bytes)
                    if failed is None:
                        outcomes.append(self._too_large(instance, size))
                        continue
                    decision, value = failed
                assert decision.state is not None
                store.put(partition, stored, decision.state, offset)
                written = (
                    OutboundRecord(
                        self.state_topic, value, key_bytes, (), partition, compacted=True
                    ),
                )
            if before is None and decision.state is not None:
                counts["started"] += 1
            tally.timings += decision.timings
            sent: list[tuple[OnexEnvelope, str, int | None]] = [
                (step, cmd_topic(step.node_id), None) for step in decision.commands
            ]
            if decision.answer is not None:
                if decision.changed:
                    ended = str(decision.state.value.get("status")) if decision.state else "ended"
                    counts[ended] += 1
                sent.append((decision.answer, self.evt_topic, None))
                caller = reply_to_of(decision.state.value) if decision.state else None
                reply_topic = self.reply_topics.get(caller) if caller is not None else None
                if reply_topic is not None:
                    sent.append((decision.answer, reply_topic, None))
            outcomes.append(PureOutcome(None, tuple(sent), written))
        return outcomes

    def restored(self, partition: int) -> None:
        """Refuse instances still running under another version of the workflow.

        An instance finishes under the contract version it started with; this host runs
        one version, so a partition holding running instances of another one stops the
        host (``ConfigError``) rather than driving them with steps they were not
        started with.
        """
        version = self.engine.contract.version
        other = [
            (name, state.value.get("version"))
            for name, state in self.store.states.items(partition)
            if state.value.get("version") != version
            and state.value.get("status") not in WORKFLOW_ENDED
        ]
        if other:
            name, started = other[0]
            raise ConfigError(
                f"orchestrator {self.node_id!r} has {len(other)} running instance(s) started "
                f"under version {started} in partition {partition}, but its contract here is "
                f"version {version}: an instance finishes under the version it started with, "
                f"so run version {started} until they end (`onex state {self.node_id} "
                f"{name.partition('/')[2]}` shows one), or give the changed workflow a new "
                "node_id"
            )

    def _failed_instead(
        self,
        before: KeyState | None,
        command: OnexEnvelope,
        ctx: ReduceContext,
        instance: str,
        key_bytes: bytes,
    ) -> tuple[WorkflowDecision, bytes] | None:
        """Decide a step's ``ok`` result whose output outgrows the changelog as its failure.

        A failed step keeps no output, so the instance fails (or compensates) now, saying
        why, rather than wait for the step's timeout and retries. ``None`` if ``command``
        is no such result, or the instance would still not fit.
        """
        error = ErrorInfo(
            type="state_too_large",
            message=(
                f"its output would make workflow instance {instance}'s snapshot more than "
                f"{self.state_topic} takes (the smaller of kafka.max_request_bytes and the "
                "topic's max.message.bytes): pass large data by reference, or raise both "
                "limits"
            ),
        )
        failed = as_failed_result(command, error)
        if failed is None:
            return None
        decision = self.engine.decide(before, failed, ctx)
        if not decision.changed or decision.state is None:
            return None
        value = decision.state.to_bytes()
        if oversized(value, key_bytes, self.record_limit):
            return None
        return decision, value

    def _too_large(self, instance: str, size: int) -> HandlerError:
        too_large = over_the_limit(size, self.state_topic, self.record_limit)
        return HandlerError(
            f"orchestrator {self.node_id!r}: workflow instance {instance}'s new snapshot "
            f"would be {too_large}; instance unchanged: keep step outputs small (pass large "
            "data by reference), or raise both limits",
            error_type="state_too_large",
            retryable=False,
        )

    def _exists(self, instance: str, state: KeyState | None) -> HandlerError:
        """Refuse a second start command for ``instance`` (an error answer, a dead letter)."""
        status = state.value.get("status") if state is not None else None
        return HandlerError(
            f"orchestrator {self.node_id!r}: workflow instance {instance} was already started "
            f"by another command (status {status}); a correlation_id starts one instance: "
            f"send a new correlation_id to start another (`onex state {self.node_id} "
            f"{instance}` shows this one)",
            error_type="workflow_exists",
            retryable=False,
        )

    def state_of(self, key: str, tenant: str = GLOBAL_TENANT) -> dict[str, JsonValue] | None:
        """Return instance ``key``'s newest snapshot here, if any.

        ``key``: a correlation id, or for an instance another workflow's step started,
        that step command's id (its step's ``command`` in the other instance's snapshot).
        """
        for _, state in self.store.find(stored_key(tenant, key)):
            return dict(state.value)
        return None

    async def execute(self, envelope: OnexEnvelope) -> dict[str, JsonValue]:
        """Not used: the runtime decides an orchestrator's records with ``decide_batch``."""
        raise HandlerError(
            f"node {self.node_id!r} is an orchestrator: its commands are read from its topic",
            error_type="not_a_bus_command",
            retryable=False,
        )

    async def health_check(self) -> HandlerHealth:
        """Report healthy, with how many instances and partitions are held."""
        return HandlerHealth(
            True, f"{len(self.store)} instances in {len(self.store.owned)} partitions"
        )

    async def aclose(self) -> None:
        """Close the state store."""
        self.store.states.close()
