"""A workload on a real broker: commands in, outcomes read back, for the delivery checker."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from pydantic import JsonValue

from onex_actors.core import (
    PARTITION_KEY_HEADER,
    EnvelopeError,
    cmd_topic,
    decode_envelope,
    dlq_topic,
    encode_envelope,
    evt_topic,
    new_command,
    record_headers,
    record_key,
)

from ._checker import Outcome, SentRecord, outcome_of

__all__ = [
    "FOLD_NODE",
    "WORKFLOW_NODE",
    "CommandStream",
    "OutcomeReader",
    "RawRecord",
    "committed_offsets",
    "create_topics",
    "end_offsets",
    "longest_gap",
    "send_commands",
    "send_raw",
    "send_records",
]


def create_topics(bootstrap: str, topics: Iterable[str], partitions: int = 4) -> None:
    """Create ``topics`` (``partitions`` each) unless they exist; return once all are usable.

    A created topic reaches the broker's metadata a moment after the create is
    answered (on a broker just started, long enough for a reader assigned at once
    to see no partitions and read nothing), so this waits until every partition
    of every topic has a leader.
    """
    names = list(topics)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        for topic in names:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(topic, partitions, 1)])
        admin.wait_for_topics(names, timeout_ms=30_000)
    finally:
        admin.close()


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """Return the offsets ``group`` has committed on ``topic``, by partition."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Return the end offset (the next offset to be written) of each partition of ``topic``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [
            KafkaTopicPartition(topic, p)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        return {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def send_commands(
    bootstrap: str,
    node: str,
    count: int,
    *,
    keys: int = 16,
    start: int = 0,
    payload: Mapping[str, JsonValue] | None = None,
    fold: bool = False,
) -> list[SentRecord]:
    """Send ``count`` commands to ``node``, spread over ``keys`` partition keys.

    Command ``i`` has key ``k{i % keys}`` and, within its key, sequence ``i // keys``;
    its payload is ``payload``, or ``{"i": i, "pad": ...}`` (about 200 bytes in all).
    ``fold``: commands for a reducer keyed by ``input.k`` (``FOLD_NODE``): the payload
    names the key and a number to add, the record key is the reducer's stored key.
    """
    commands = [
        new_command(
            node,
            _fold_payload(i, keys)
            if fold
            else payload
            if payload is not None
            else {"i": i, "pad": "x" * 40},
            headers={PARTITION_KEY_HEADER: f"global/k{i % keys}" if fold else f"k{i % keys}"},
        )
        for i in range(start, start + count)
    ]
    sent = _produce(
        bootstrap,
        cmd_topic(node),
        [(encode_envelope(c), record_key(c), record_headers(c)) for c in commands],
    )
    # a key's order is per node: its results are read back from the node's own evt topic
    return [
        SentRecord(p, o, str(c.envelope_id), f"{node}/{c.headers[PARTITION_KEY_HEADER]}", i // keys)
        for i, (c, (p, o)) in enumerate(zip(commands, sent, strict=True), start)
    ]


FOLD_NODE = """kind: reducer
key: input.k
state: {initial: {count: 0, total: 0, digest: 0}}
fold:
  assign:
    count: state.count + 1
    total: state.total + input.n
    digest: (state.digest * 31 + input.i) % 1000000007
  intents:
    - node_id: sink-{tag}
      payload: {i: input.i}
"""
"""The body of the fault scenarios' reducer (after ``node_id`` and ``version``): a count,
a sum, and a digest that depends on the order each key's commands were folded in; and an
intent per command to the echo node ``sink-{tag}``, carrying the command's ``i``."""


WORKFLOW_NODE = """kind: orchestrator
workflow:
  steps:
    - name: first
      node_id: step1-{tag}
      payload: {i: input.i, pad: input.pad}
      timeout_s: 120
    - name: second
      node_id: step2-{tag}
      depends_on: [first]
      payload: {i: steps.first.output.i}
      timeout_s: 120
  output: {i: steps.second.output.i}
"""
"""The body of the fault scenarios' orchestrator: two echo steps one after the other
(``step1-{tag}``, ``step2-{tag}``), carrying the start's ``i`` to the answer."""

NESTED_NODE = """kind: orchestrator
workflow:
  steps:
    - name: inner
      node_id: flow-{tag}
      payload: {i: input.i, pad: input.pad}
      timeout_s: 120
  output: {i: steps.inner.output.i}
"""
"""An orchestrator whose one step is ``WORKFLOW_NODE`` (``flow-{tag}``): each start
starts an instance of that workflow, whose answer, carrying ``i``, is the step's result."""


def _fold_payload(i: int, keys: int) -> dict[str, JsonValue]:
    return {"k": f"k{i % keys}", "i": i, "n": i % 7 + 1, "pad": "x" * 24}


class CommandStream:
    """Sends ``count`` commands from a thread, ``batch`` at a time, as a live workload would.

    Faults then strike while commands are still arriving, not after a burst is done.
    """

    def __init__(
        self,
        bootstrap: str,
        node: str,
        count: int,
        *,
        batch: int = 500,
        rate: float | None = None,
        fold: bool = False,
    ) -> None:
        """Send from a thread once entered.

        ``rate``: commands per second, steady (as fast as the broker takes them if None);
        ``fold``: commands for the fault scenarios' reducer (``FOLD_NODE``).
        """
        self.bootstrap, self.node, self.count, self.batch = bootstrap, node, count, batch
        self.rate = rate
        self.fold = fold
        self._sent: list[SentRecord] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"commands-{node}", daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> CommandStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()

    def sent(self) -> list[SentRecord]:
        """Return the records sent (acknowledged by the broker) so far."""
        with self._lock:
            return list(self._sent)

    def join(self) -> list[SentRecord]:
        """Wait until every command is sent; return them all."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.sent()

    def _run(self) -> None:
        began = time.monotonic()
        try:
            for start in range(0, self.count, self.batch):
                size = min(self.batch, self.count - start)
                records = send_commands(
                    self.bootstrap, self.node, size, start=start, fold=self.fold
                )
                with self._lock:
                    self._sent += records
                if self.rate is not None:
                    time.sleep(max(0.0, began + (start + size) / self.rate - time.monotonic()))
        except BaseException as exc:  # handed to join()
            self._error = exc


@attrs.frozen
class RawRecord:
    """A record exactly as an outside producer may write it."""

    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    codec: str | None = None
    """Compression of its batch: None, gzip, snappy, lz4 or zstd."""


def send_raw(bootstrap: str, node: str, values: Sequence[bytes]) -> list[SentRecord]:
    """Send ``values`` as they are to ``node``'s command topic (for malformed input)."""
    return send_records(bootstrap, node, [RawRecord(v) for v in values])


def send_records(bootstrap: str, node: str, records: Sequence[RawRecord]) -> list[SentRecord]:
    """Send ``records`` to ``node``'s command topic, each batch compressed by its codec."""
    sent: dict[int, tuple[int, int]] = {}
    for codec in dict.fromkeys(r.codec for r in records):
        chosen = [i for i, r in enumerate(records) if r.codec == codec]
        where = _produce(
            bootstrap,
            cmd_topic(node),
            [(records[i].value, records[i].key, list(records[i].headers)) for i in chosen],
            codec=codec,
        )
        sent.update(zip(chosen, where, strict=True))
    return [SentRecord(*sent[i], envelope_id=_envelope_id(r.value)) for i, r in enumerate(records)]


def _envelope_id(value: bytes | None) -> str | None:
    try:
        return str(decode_envelope(value).envelope_id)
    except EnvelopeError:
        return None


def _produce(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]]]],
    *,
    codec: str | None = None,
) -> list[tuple[int, int]]:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_block_ms=120_000,
        compression_type=codec,
        max_request_size=4 * 1024 * 1024,
    )
    try:
        futures = [
            producer.send(topic, value=value, key=key, headers=list(headers))
            for value, key, headers in records
        ]
        producer.flush()
        metadata = [f.get(timeout=120) for f in futures]
        return [(m.partition, m.offset) for m in metadata]
    finally:
        producer.close()


def longest_gap(stamps: Iterable[float], since: float) -> tuple[float, float]:
    """Return the longest interval from ``since`` on with none of ``stamps`` inside it.

    Measured from ``since`` to the first stamp, then between consecutive stamps, up to
    the last one: its length and when it began (``(0, since)`` without stamps after it).
    """
    after = sorted(stamp for stamp in stamps if stamp >= since)
    return max(
        ((b - a, a) for a, b in zip([since, *after], after, strict=False)), default=(0.0, since)
    )


def slowest_partition(
    outcomes: Sequence[Outcome], stamps: Sequence[float], sent: Sequence[SentRecord], since: float
) -> float:
    """Seconds from ``since`` (epoch s) to the last first answer of a command partition.

    For each partition of the commands ``sent``, the first of ``outcomes`` (produced at
    ``stamps``) at or after ``since`` that answers one of its commands; the latest of
    those. After a host is killed, the partitions it held answer last: this is when.
    """
    partition_of = {r.envelope_id: r.partition for r in sent if r.envelope_id is not None}
    first: dict[int, float] = {}
    for outcome, stamp in zip(outcomes, stamps, strict=True):
        if stamp < since or outcome.cause is None:
            continue
        partition = partition_of.get(outcome.cause)
        if partition is not None and stamp < first.get(partition, float("inf")):
            first[partition] = stamp
    return max(first.values(), default=since) - since


class OutcomeReader:
    """Reads the evt and dlq topics of nodes (and a runtime's dlq) from the beginning."""

    def __init__(self, bootstrap: str, nodes: Sequence[str], runtime: str | None = None) -> None:
        self.topics = [t for n in nodes for t in (evt_topic(n), dlq_topic(n))]
        if runtime is not None:
            self.topics.append(dlq_topic(runtime))
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",  # what exactly-once promises is this view
        )
        self.partitions: list[KafkaTopicPartition] = []
        for topic in self.topics:
            known = self.consumer.partitions_for_topic(topic)
            if not known:
                self.consumer.close()
                raise RuntimeError(
                    f"no partitions of {topic} in the broker's metadata: create it "
                    "(create_topics waits until it is usable) before reading its outcomes"
                )
            self.partitions += [KafkaTopicPartition(topic, p) for p in sorted(known)]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)
        self.outcomes: list[Outcome] = []
        self.stamps: list[float] = []
        """When each outcome was produced (its record's timestamp, in epoch seconds)."""
        self.causes: set[str] = set()
        self.sources: set[tuple[int, int]] = set()

    def answered(self, sent: Sequence[SentRecord]) -> int:
        """How many of ``sent`` have an outcome among those read so far."""
        return sum(
            1
            for r in sent
            if (r.envelope_id in self.causes) or ((r.partition, r.offset) in self.sources)
        )

    def read_until(self, done: Callable[[OutcomeReader], bool], timeout_s: float) -> bool:
        """Read until ``done(self)`` or ``timeout_s``; return whether ``done`` came true."""
        deadline = time.monotonic() + timeout_s
        while not done(self):
            if time.monotonic() > deadline:
                return False
            self.poll()
        return True

    def read_to_end(self) -> None:
        """Read everything the topics hold now."""
        ends = self.consumer.end_offsets(self.partitions)
        while any(self.consumer.position(tp) < end for tp, end in ends.items()):
            self.poll()

    def poll(self) -> None:
        """Read what arrived (up to 100 ms of waiting)."""
        try:
            fetched = self.consumer.poll(timeout_ms=100)
        except KafkaError:
            time.sleep(0.1)  # the broker is away (a fault scenario): try again later
            return
        for tp, records in fetched.items():
            for record in records:
                try:
                    envelope = decode_envelope(record.value)
                except EnvelopeError:
                    continue
                outcome = outcome_of(envelope, tp.partition, record.offset)
                if outcome is None:
                    continue
                if outcome.kind == "dlq" and outcome.source is not None:
                    self.sources.add(outcome.source)
                if outcome.cause is not None:
                    self.causes.add(outcome.cause)
                self.outcomes.append(outcome)
                self.stamps.append(record.timestamp / 1000)

    def slowest_partition(self, sent: Sequence[SentRecord], since: float) -> float:
        """Seconds from ``since`` until every partition of ``sent`` answered (see the function)."""
        return slowest_partition(self.outcomes, self.stamps, sent, since)

    def longest_gap(self, since: float) -> tuple[float, float]:
        """Return the longest time after ``since`` (epoch s) in which no outcome was produced."""
        return longest_gap(self.stamps, since)

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()
