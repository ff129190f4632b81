"""The state checker: every reducer key's final state against a fold computed here.

Independent of the runtime's code: the commands are read back from the node's command
topic (each distinct envelope once, in the order of its key's own partition under
Kafka's default partitioner, kafka-python's murmur2), folded by the plain Python below
as ``FOLD_NODE`` says, and compared with the newest committed record of each key in the
node's changelog. A key whose state differs, or that is missing, is a wrong key. For a
workflow (``WORKFLOW_NODE``), each start command's answer is checked against its input.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import attrs
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.partitioner.default import murmur2

from onex_actors.core import EnvelopeError, cmd_topic, decode_envelope, evt_topic, state_topic

__all__ = ["StateReport", "check_fold_state", "check_workflow_answers", "workflow_endings"]


@attrs.frozen
class StateReport:
    """Keys whose final state is not the fold of their commands."""

    keys: int
    wrong: tuple[str, ...]
    """Each wrong key, with what was expected and what the changelog holds."""


OPEN_TRANSACTIONS_WAIT_S = 60.0
"""How long a read-committed check waits for the transactions open on a topic to end.

A host killed in a transaction leaves it open until the broker aborts it at its
transaction timeout (``delivery.transaction_timeout_s``, 10 s), and the records
committed after it, the restarted host's, stay unreadable to read-committed consumers
until then: checked earlier, the topic would look as it was at the kill."""


def _wait_for_open_transactions(bootstrap: str, topic: str, timeout_s: float) -> None:
    """Return once no transaction is open on ``topic`` (or after ``timeout_s``).

    That is when each partition's last stable offset, which a read-committed consumer
    reads up to, has reached its end.
    """
    consumers = [
        KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level=level)
        for level in ("read_committed", "read_uncommitted")
    ]
    try:
        stable, ends = consumers
        partitions = [
            KafkaTopicPartition(topic, p) for p in sorted(ends.partitions_for_topic(topic) or ())
        ]
        deadline = time.monotonic() + timeout_s
        while stable.end_offsets(partitions) != ends.end_offsets(partitions):
            if time.monotonic() > deadline:
                return  # the check reads what is committed, and says what is missing
            time.sleep(0.2)  # polls the broker's offsets: the abort is the broker's timer
    finally:
        for consumer in consumers:
            consumer.close()


def _records(bootstrap: str, topic: str, committed: bool) -> Iterator[tuple[int, int, Any]]:
    """Yield (partition count, partition, record) for every record of ``topic``.

    Read committed, once no transaction is open on it (``OPEN_TRANSACTIONS_WAIT_S``).
    """
    if committed:
        _wait_for_open_transactions(bootstrap, topic, OPEN_TRANSACTIONS_WAIT_S)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed" if committed else "read_uncommitted",
    )
    try:
        partitions = [
            KafkaTopicPartition(topic, p)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            for tp, batch in consumer.poll(timeout_ms=500).items():
                for record in batch:
                    yield len(partitions), tp.partition, record
    finally:
        consumer.close()


def check_fold_state(bootstrap: str, node: str, sink: str | None = None) -> StateReport:
    """Compare every key's changelog state with the fold of the commands sent to it.

    With ``sink``, each command folded must also have sent its intent there: a command
    whose intent is not on ``sink``'s command topic (read committed) is wrong too.
    """
    expected: dict[str, dict[str, int]] = {}
    folded: set[str] = set()
    commands: set[str] = set()
    for count, partition, record in _records(bootstrap, cmd_topic(node), committed=False):
        try:
            envelope = decode_envelope(record.value)
        except EnvelopeError:
            continue
        name = f"{envelope.tenant_id}/{envelope.payload['k']}"
        if partition != (murmur2(name.encode()) & 0x7FFFFFFF) % count:
            continue  # not where the key lives: its copy there is what was folded
        if str(envelope.envelope_id) in folded:
            continue
        folded.add(str(envelope.envelope_id))
        i, n = envelope.payload["i"], envelope.payload["n"]
        if not isinstance(i, int) or not isinstance(n, int):
            continue  # not a command of the workload
        commands.add(str(envelope.envelope_id))
        state = expected.setdefault(name, {"count": 0, "total": 0, "digest": 0})
        state["count"] += 1
        state["total"] += n
        state["digest"] = (state["digest"] * 31 + i) % 1_000_000_007
    held: dict[str, object] = {}
    for _, _, record in _records(bootstrap, state_topic(node), committed=True):
        key, value = record.key.decode(), record.value
        held[key] = json.loads(value)["value"] if value is not None else None
    wrong = tuple(
        f"{key}: expected {state}, the changelog holds {held.get(key)}"
        for key, state in sorted(expected.items())
        if held.get(key) != state
    )
    if sink is not None:
        sent: set[str] = set()
        for _, _, record in _records(bootstrap, cmd_topic(sink), committed=True):
            try:
                sent.add(str(decode_envelope(record.value).causation_id))
            except EnvelopeError:
                continue
        wrong += tuple(
            f"command {command}: folded, but its intent never reached {sink}"
            for command in sorted(commands - sent)
        )
    return StateReport(len(expected), wrong)


def check_workflow_answers(bootstrap: str, node: str) -> StateReport:
    """Compare each workflow's answer with what ``WORKFLOW_NODE`` must answer its start.

    Every start command read back from the orchestrator's command topic must have an
    ``ok`` answer on its evt topic (read committed) whose ``i`` is the start's own: the
    two steps carry it through. A start with no answer, an error, or another ``i`` is a
    wrong workflow (answered twice is the delivery checker's duplicate).
    """
    expected: dict[str, object] = {}
    for _, _, record in _records(bootstrap, cmd_topic(node), committed=False):
        try:
            envelope = decode_envelope(record.value)
        except EnvelopeError:
            continue
        headers = envelope.headers
        if envelope.type.value == "cmd" and not {"onex-result-of", "onex-timer"} & set(headers):
            expected[str(envelope.envelope_id)] = envelope.payload.get("i")
    answered: dict[str, tuple[str, object]] = {}
    for _, _, record in _records(bootstrap, evt_topic(node), committed=True):
        try:
            envelope = decode_envelope(record.value)
        except EnvelopeError:
            continue
        status = envelope.status.value if envelope.status is not None else None
        answered[str(envelope.causation_id)] = (str(status), envelope.payload.get("i"))
    wrong = tuple(
        f"workflow {start}: expected ok with i={i}, got {answered.get(start, 'no answer')}"
        for start, i in sorted(expected.items())
        if answered.get(start) != ("ok", i)
    )
    return StateReport(len(expected), wrong)


def workflow_endings(bootstrap: str, node: str, last_step: str) -> dict[str, tuple[int, int]]:
    """Where each workflow of ``WORKFLOW_NODE`` ended, by its start command's id.

    That is the (partition, offset), on the orchestrator's command topic, of the first
    result of its last step (node ``last_step``): the record whose decision answers the
    start. At-least-once may answer a start again when that record's offset was not yet
    committed, however long ago the start's own offset was.
    """
    starts: dict[str, str] = {}
    ended: dict[str, tuple[int, int]] = {}
    for _, partition, record in _records(bootstrap, cmd_topic(node), committed=False):
        try:
            envelope = decode_envelope(record.value)
        except EnvelopeError:
            continue
        flow = str(envelope.correlation_id)
        if envelope.type.value == "cmd" and not {"onex-result-of", "onex-timer"} & set(
            envelope.headers
        ):
            starts.setdefault(flow, str(envelope.envelope_id))
        elif envelope.type.value == "evt" and envelope.node_id == last_step:
            ended.setdefault(flow, (partition, record.offset))
    return {start: ended[flow] for flow, start in starts.items() if flow in ended}
