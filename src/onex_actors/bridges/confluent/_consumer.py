"""confluent-kafka's consumer (librdkafka) behind a worker thread, delivering batches into trio.

The thread owns the ``Consumer`` (its handle is not called from two threads): it
consumes, commits, pauses and resumes. It keeps consuming while partitions are paused,
so a slow node never makes the group rebalance. Each ``consume`` call becomes one batch.

Rebalancing is incremental: the KIP-848 consumer group protocol where the broker
offers it (``group.protocol=consumer``), else the classic protocol with the
``cooperative-sticky`` assignor. Before partitions are revoked, the thread asks the
runtime (on the trio thread) for their done offsets and commits them.

A transactional host (``delivery: exactly_once``) commits offsets only in its
producer's transactions; it reads with ``read_committed`` and, after an aborted
transaction or a revocation, reads its partitions again from their last commit
(:meth:`ConfluentConsumerBridge.rewind`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast

import trio
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message
from confluent_kafka import TopicPartition as CKTopicPartition

from onex_actors.core import BusError, TopicPattern
from onex_actors.runtime import DoneOffsets, Record, TopicPartition, TransactionState

from .._membership import GroupMember
from ._client_log import CLIENT_LOGGER
from ._subscription import ResolvedSubscription

__all__ = ["ConfluentConsumerBridge", "unreadable_record"]

logger = logging.getLogger("onex_actors.kafka")
_MAX_OUTSTANDING_BATCHES = 4
_T = TypeVar("_T")


class ConfluentConsumerBridge(GroupMember):
    """The trio side of one consumer-group member on librdkafka; a ``BusConsumer``."""

    def __init__(
        self,
        config: Mapping[str, Any],
        patterns: Sequence[TopicPattern],
        group_id: str,
        *,
        max_poll_records: int = 500,
        session_timeout_ms: int = 10_000,
        call_timeout_s: float = 10.0,
        group_protocol: Literal["classic", "consumer"] = "classic",
        done_offsets: DoneOffsets | None = None,
    ) -> None:
        super().__init__()
        self.config = {
            **config,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "topic.metadata.refresh.interval.ms": 5_000,
            # records of aborted transactions are never read (librdkafka's default too)
            "isolation.level": "read_committed",
        }
        if group_protocol == "consumer":
            # the session is the broker's in KIP-848's protocol; the assignor runs there
            # too, and ``range`` splits each topic among the members (``uniform`` balances
            # the count and may give one member every partition of the busiest topic)
            self.config["group.protocol"] = "consumer"
            self.config["group.remote.assignor"] = "range"
        else:
            self.config["session.timeout.ms"] = session_timeout_ms
            self.config["partition.assignment.strategy"] = "cooperative-sticky"
        self.group_protocol = group_protocol
        self.subscription = [_subscription(pattern) for pattern in patterns]
        wildcards = any(name.startswith("^") for name in self.subscription)
        self._resolved = (
            ResolvedSubscription(patterns) if wildcards and group_protocol == "consumer" else None
        )
        """Set where the client resolves the patterns (KIP-848 groups; see _subscription)."""
        self.done_offsets = done_offsets
        self.revoke_commits = 0
        """Commits made for partitions about to be revoked."""
        self.group_id = group_id
        self.max_poll_records = max_poll_records
        self.call_timeout_s = call_timeout_s
        self._send, self._receive = trio.open_memory_channel[tuple[int, list[Record]] | BusError](
            math.inf
        )
        self._epoch = 0
        """The read-again a fetched batch belongs to (consumer thread: set by the seek)."""
        self._wanted_epoch = 0
        """The read-again :meth:`poll` accepts batches of (trio thread): bumped the moment
        :meth:`rewind` is called, so a batch fetched before its seek is dropped even if it
        arrives while the seek waits for the consumer thread."""
        self.revoked_by_client = 0
        """Revocations as the rebalance callbacks saw them (consumer thread)."""
        self._assigned_generation = -1
        """The generation whose assignment the last callback put in place (classic
        protocol; consumer thread)."""
        self._commands: queue.Queue[Callable[[Consumer], object]] = queue.Queue()
        self._paused: set[TopicPartition] = set()
        self._outstanding = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._taken = threading.Event()
        """Set when trio takes a batch: the thread waits on it while trio is behind."""
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._held: set[tuple[str, int]] = set()
        """Partitions the thread has paused (librdkafka does not report them)."""
        self._unsure: set[tuple[str, int]] = set()
        """Partitions (re)assigned since the last reconcile: paused or not, who knows."""
        self.rebalances = 0

    async def start(self) -> None:
        """Create the consumer in its thread and subscribe."""
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.Thread(
            target=self._run, name=f"onex-confluent-{self.group_id}", daemon=True
        )
        self._thread.start()
        await trio.to_thread.run_sync(self._ready.wait)
        if self._failure is not None:
            raise BusError(f"cannot start the Kafka consumer: {self._failure}") from None

    async def aclose(self) -> None:
        """Stop consuming and close the consumer (leaving the group), bounded in time."""
        self._stopping.set()
        thread = self._thread
        if thread is None:
            return
        await trio.to_thread.run_sync(thread.join, self.call_timeout_s, abandon_on_cancel=True)
        if thread.is_alive():
            logger.error(
                "Kafka consumer of group %s did not stop within %g s: leaving its thread",
                self.group_id,
                self.call_timeout_s,
            )

    async def poll(self, max_records: int) -> list[Record]:
        """Return the next batch from the consumer thread (waits for one).

        Batches fetched before a :meth:`rewind` are dropped.
        """
        while True:
            delivered = await self._receive.receive()
            if isinstance(delivered, BusError):
                raise delivered
            epoch, batch = delivered
            with self._lock:
                self._outstanding -= 1
            self._taken.set()
            if epoch == self._wanted_epoch:
                return batch

    async def transaction_state(self) -> TransactionState:
        """Return this member's group metadata, the revocations counted, its partitions.

        Read on the consumer thread, where the rebalance callbacks run: metadata of a
        newer generation always comes with its revocation counted. The metadata is None
        while the member has no generation (it is rejoining) and, with the classic
        protocol, while a new generation's assignment is not yet in place.
        """

        def read(consumer: Consumer) -> TransactionState:
            metadata = consumer.consumer_group_metadata()
            generation, member = group_generation(metadata)
            settled = generation >= 0 and bool(member)
            if self.group_protocol == "classic":
                settled = settled and generation == self._assigned_generation
            owned = frozenset(_ours(consumer.assignment()))
            return TransactionState(metadata if settled else None, self.revoked_by_client, owned)

        return await self._ask(read)

    async def rewind(self) -> None:
        """Read every owned partition again from its last committed offset.

        Batches fetched before and not yet returned by :meth:`poll` are dropped.
        """
        self._wanted_epoch += 1  # before any await: nothing fetched earlier is dispatched
        epoch = self._wanted_epoch
        await self._ask(lambda consumer: self._rewind(consumer, epoch))

    def _rewind(self, consumer: Consumer, epoch: int) -> None:
        self._epoch = epoch
        owned = consumer.assignment()
        if not owned:
            return
        committed = consumer.committed(owned, timeout=self.call_timeout_s)
        positions = [
            CKTopicPartition(
                tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            )
            for tp in committed
        ]
        for position in positions:
            try:
                consumer.seek(position)
            except KafkaException:
                # not fetching yet (just assigned): assigning it again sets its position
                consumer.incremental_unassign([position])
                consumer.incremental_assign([position])
                self._unsure.add((position.topic, position.partition))
        logger.info(
            "Kafka consumer of group %s (pid %d) reads again from %s",
            self.group_id,
            os.getpid(),
            ", ".join(sorted(f"{p.topic}:{p.partition}@{p.offset}" for p in positions)),
        )

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` of the partitions this member still owns."""
        owned = [
            CKTopicPartition(tp.topic, tp.partition, offset)
            for tp, offset in offsets.items()
            if tp in self.assignment
        ]
        if not owned:
            await trio.lowlevel.checkpoint()
            return
        await self._call(lambda consumer: consumer.commit(offsets=owned, asynchronous=False))

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop fetching ``partitions`` (reconciled by the thread before each consume)."""
        with self._lock:
            self._paused.update(partitions)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        """Fetch ``partitions`` again."""
        with self._lock:
            self._paused.difference_update(partitions)

    async def _call(self, command: Callable[[Consumer], object]) -> None:
        await self._ask(command)

    async def _ask(self, command: Callable[[Consumer], _T]) -> _T:
        """Run ``command`` on the consumer thread; return what it returns."""
        done = trio.Event()
        failure: list[BusError] = []
        answer: list[_T] = []

        def run(consumer: Consumer) -> None:
            try:
                answer.append(command(consumer))
            except KafkaException as exc:
                failure.append(BusError(f"Kafka consumer call failed: {exc.args[0]}"))
            self._soon(done.set)

        self._commands.put(run)
        with trio.move_on_after(self.call_timeout_s):
            await done.wait()
        if not done.is_set():
            raise BusError(
                f"Kafka consumer of group {self.group_id!r} did not answer within "
                f"{self.call_timeout_s:g} s"
            )
        if failure:
            raise failure[0]
        return answer[0]

    def _soon(self, fn: Callable[..., object], *args: object) -> None:
        assert self._token is not None
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(fn, *args)

    def _deliver(self, batch: tuple[int, list[Record]] | BusError) -> None:
        self._send.send_nowait(batch)

    def _rebalanced(self, assigned: list[TopicPartition], revoked: list[TopicPartition]) -> None:
        if revoked:
            self.rebalances += 1
        self._change_assignment(assigned, revoked)

    # -- the consumer thread -------------------------------------------------------

    def _run(self) -> None:
        try:
            consumer = Consumer(self.config, logger=CLIENT_LOGGER)
            if self._resolved is None:
                self._subscribe(consumer, self.subscription)
            else:
                self._follow_topics(consumer)
        except (KafkaException, ValueError, TypeError) as exc:
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stopping.is_set():
                self._consume_once(consumer)
            self._run_commands(consumer)
        except BaseException as exc:
            logger.error("Kafka consumer of group %s stopped: %s", self.group_id, exc)
            self._soon(
                self._deliver,
                BusError(f"Kafka consumer of group {self.group_id!r} stopped: {exc}"),
            )
        finally:
            consumer.close()

    def _subscribe(self, consumer: Consumer, topics: Sequence[str]) -> None:
        consumer.subscribe(
            list(topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def _follow_topics(self, consumer: Consumer) -> None:
        """Subscribe to the topics matching the patterns now, if they changed."""
        assert self._resolved is not None
        topics = self._resolved.changed(consumer)
        if topics is None:
            return
        if topics:
            self._subscribe(consumer, topics)
        else:
            consumer.unsubscribe()

    def _consume_once(self, consumer: Consumer) -> None:
        self._run_commands(consumer)
        if self._resolved is not None:
            self._follow_topics(consumer)
        with self._lock:
            behind = self._outstanding >= _MAX_OUTSTANDING_BATCHES
            paused = set(self._paused)
        self._reconcile_pauses(consumer, paused)
        if behind:
            # trio has not taken the last batches: wait here rather than pause every
            # partition (a pause drops what librdkafka fetched ahead); its own threads
            # keep the group membership meanwhile
            self._taken.wait(0.05)
            self._taken.clear()
            return
        # consume() waits for a full batch or its timeout: wait for one record only,
        # then take what else is already here
        first = consumer.poll(0.05)
        if first is None:
            return
        messages = [first, *consumer.consume(num_messages=self.max_poll_records - 1, timeout=0)]
        batch: list[Record] = []
        for message in messages:
            error = message.error()
            if error is None:
                batch.append(_record(message))
            elif error.fatal():
                raise KafkaException(error)
            elif (unreadable := unreadable_record(message)) is not None:
                logger.error("Kafka consumer of group %s: %s", self.group_id, unreadable.unreadable)
                batch.append(unreadable)
            else:
                logger.warning("Kafka consumer of group %s: %s", self.group_id, error)
        if batch:
            self._note_ends(consumer, {(r.topic, r.partition) for r in batch})
            with self._lock:
                self._outstanding += 1
            self._soon(self._deliver, (self._epoch, batch))

    def _note_ends(self, consumer: Consumer, partitions: set[tuple[str, int]]) -> None:
        """Keep the high watermarks librdkafka has from its last fetches (no request)."""
        for topic, partition in partitions:
            try:
                _, high = consumer.get_watermark_offsets(
                    CKTopicPartition(topic, partition), cached=True
                )
            except KafkaException:
                continue
            if high >= 0:
                self._ends[TopicPartition(topic, partition)] = high

    def _reconcile_pauses(self, consumer: Consumer, paused: set[TopicPartition]) -> None:
        """Pause and resume so the consumer's paused set is the one wanted (thread only)."""
        if not paused and not self._held and not self._unsure:
            return
        assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        want = {
            (topic, partition)
            for topic, partition in assigned
            if TopicPartition(topic, partition) in paused
        }
        unsure = self._unsure & assigned
        held = (self._held & assigned) - unsure
        if want - held:
            consumer.pause([CKTopicPartition(t, p) for t, p in want - held])
        if (held | unsure) - want:
            consumer.resume([CKTopicPartition(t, p) for t, p in (held | unsure) - want])
        self._held = want
        self._unsure -= assigned

    def _on_assign(self, consumer: Consumer, partitions: list[CKTopicPartition]) -> None:
        # runs on the consumer thread, inside consume(); librdkafka keeps a partition's
        # pause flag while it is away (Java drops it): the next reconcile sets it anew
        self._assigned_generation, _ = group_generation(consumer.consumer_group_metadata())
        self._unsure.update((tp.topic, tp.partition) for tp in partitions)
        self._soon(self._rebalanced, _ours(partitions), [])

    def _on_revoke(self, consumer: Consumer, partitions: list[CKTopicPartition]) -> None:
        # runs on the consumer thread, inside consume(), before the partitions go
        revoked = _ours(partitions)
        if revoked:
            self.revoked_by_client += 1
        self._commit_done(consumer, revoked)
        self._soon(self._rebalanced, [], revoked)

    def _on_lost(self, _consumer: Consumer, partitions: list[CKTopicPartition]) -> None:
        # already someone else's: a commit would be refused
        if partitions:
            self.revoked_by_client += 1
        self._soon(self._rebalanced, [], _ours(partitions))

    def _commit_done(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        """Commit the done offsets of ``revoked`` (consumer thread, blocks on trio)."""
        if self.done_offsets is None or not revoked or self._token is None:
            return
        try:
            done = trio.from_thread.run_sync(self.done_offsets, revoked, trio_token=self._token)
        except trio.RunFinishedError:
            return
        if not done:
            return
        offsets = [CKTopicPartition(tp.topic, tp.partition, offset) for tp, offset in done.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            logger.warning(
                "Kafka consumer of group %s could not commit %d revoked partitions before "
                "they went (their next owner may handle some records again): %s",
                self.group_id,
                len(offsets),
                exc.args[0],
            )
            return
        self.revoke_commits += 1

    def _run_commands(self, consumer: Consumer) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            command(consumer)


_METADATA_MAGIC = b"CGMDv2:"


def group_generation(metadata: object) -> tuple[int, str]:
    """Return the generation and member id in librdkafka's serialized group metadata.

    confluent-kafka hands the metadata over as librdkafka writes it: ``CGMDv2:``, the
    generation (int32, native order), then group id and member id, each NUL-ended.
    Anything else reads as no generation.
    """
    if not isinstance(metadata, bytes) or not metadata.startswith(_METADATA_MAGIC):
        return -1, ""
    start = len(_METADATA_MAGIC)
    try:
        (generation,) = struct.unpack_from("=i", metadata, start)
        _group, member, *_ = metadata[start + 4 :].split(b"\0", 2)
    except (struct.error, ValueError):
        return -1, ""
    return generation, member.decode(errors="replace")


def _subscription(pattern: TopicPattern) -> str:
    """Return a topic name as itself, a pattern with wildcards as a librdkafka regex."""
    if "*" in pattern.text or "#" in pattern.text:
        return pattern.posix
    return pattern.text


def _record(message: Message) -> Record:
    """Return a consumed message (never an error event) as the runtime's ``Record``."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None
    assert partition is not None
    assert offset is not None
    headers = message.headers()
    pairs: tuple[tuple[str, bytes | None], ...] = ()
    if isinstance(headers, list):  # what consumed messages carry: (str, bytes | None) pairs
        pairs = tuple(cast("list[tuple[str, bytes | None]]", headers))
    elif headers:
        pairs = tuple((name, _bytes(value)) for name, value in headers.items())
    return Record(topic, partition, offset, message.key(), message.value(), pairs)


def unreadable_record(message: Message) -> Record | None:
    """Return an error event about one record (a corrupt message) as a record to dead-letter.

    Errors about a partition or the connection (no offset) are not records: None.
    """
    error = message.error()
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if error is None or topic is None or partition is None or offset is None or offset < 0:
        return None
    return Record(
        topic, partition, offset, None, None, unreadable=f"librdkafka {error.name()}: {error.str()}"
    )


def _bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _our(tp: CKTopicPartition) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


def _ours(partitions: list[CKTopicPartition]) -> list[TopicPartition]:
    return [_our(tp) for tp in partitions]
