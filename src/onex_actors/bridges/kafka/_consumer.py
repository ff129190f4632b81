"""kafka-python's consumer behind a worker thread, delivering batches into trio.

The thread owns the ``KafkaConsumer`` (it is not thread-safe): it polls, commits,
pauses and resumes. It keeps polling while partitions are paused, so a slow node never
makes the group rebalance. Each poll becomes one batch on the trio side.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio
from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata
from kafka import TopicPartition as KafkaTopicPartition
from kafka.errors import KafkaError
from kafka.structs import MemberState

from onex_actors.core import BusError, TopicPattern
from onex_actors.runtime import Record, TopicPartition, TransactionState

from .._membership import GroupMember
from ._repairs import UnreadableRecord, repair_consumer
from ._stalls import StallWatch

__all__ = ["KafkaConsumerBridge", "subscription_regex"]

logger = logging.getLogger("onex_actors.kafka")
_MAX_OUTSTANDING_BATCHES = 4
STUCK_POLL_S = 120.0
"""A ``KafkaConsumer.poll(timeout_ms=50)`` still running after this long is hung."""
_WATCH_EVERY_S = 5.0


def subscription_regex(patterns: Sequence[TopicPattern]) -> str:
    """One regex matching every topic any of ``patterns`` matches."""
    return "^(?:" + "|".join(p.regex.pattern for p in patterns) + ")$"


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, bridge: KafkaConsumerBridge) -> None:
        self.bridge = bridge

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.bridge._on_revoked(revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.bridge._on_assigned(assigned)


class KafkaConsumerBridge(GroupMember):
    """The trio side of one consumer-group member; implements ``BusConsumer``."""

    def __init__(
        self,
        client_config: Mapping[str, Any],
        patterns: Sequence[TopicPattern],
        group_id: str,
        *,
        max_poll_records: int = 500,
        session_timeout_ms: int = 10_000,
        stall_timeout_s: float = 60.0,
        call_timeout_s: float = 10.0,
        isolation_level: str = "read_committed",
    ) -> None:
        super().__init__()
        self.client_config = dict(client_config)
        self.isolation_level = isolation_level
        """Records of aborted transactions are never read (``read_committed``)."""
        self.regex = subscription_regex(patterns)
        literal = not any({"*", "#"} & set(pattern.text) for pattern in patterns)
        self.topics = [pattern.text for pattern in patterns] if literal else None
        """The topic names to subscribe to, when no pattern has a wildcard (no metadata
        round trip to resolve them); else None and the client follows ``regex``."""
        self.stall_timeout_s = stall_timeout_s
        self.call_timeout_s = call_timeout_s
        """How long a call into the consumer thread (a commit), or joining it, may take."""
        self._stalls = StallWatch(group_id, stall_timeout_s)
        self.group_id = group_id
        self.max_poll_records = max_poll_records
        self.session_timeout_ms = session_timeout_ms
        self._send, self._receive = trio.open_memory_channel[tuple[int, list[Record]] | BusError](
            math.inf
        )
        self._epoch = 0
        """The read-again a fetched batch belongs to (consumer thread: set by the seek)."""
        self._wanted_epoch = 0
        """The read-again :meth:`poll` accepts batches of (trio thread): bumped the moment
        :meth:`rewind` is called, so a batch fetched before its seek is dropped even if it
        arrives while the seek waits for the consumer thread."""
        self._commands: queue.Queue[Callable[[KafkaConsumer], object]] = queue.Queue()
        self._paused: set[TopicPartition] = set()
        self._outstanding = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._consumer: KafkaConsumer | None = None
        self.rebalances = 0
        self.revoked_by_client = 0
        self._assigned_generation = -1
        """The generation whose assignment kafka-python last put in place (IO thread)."""
        """Revocations as kafka-python's rebalance listener saw them (its IO thread)."""
        self.polling_since: float | None = None
        """``time.monotonic()`` when the consumer thread entered its current poll."""

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Create the consumer in its thread and subscribe."""
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.Thread(
            target=self._run, name=f"onex-kafka-{self.group_id}", daemon=True
        )
        self._thread.start()
        await trio.to_thread.run_sync(self._ready.wait)
        if self._failure is not None:
            raise BusError(f"cannot start the Kafka consumer: {self._failure}") from None

    async def aclose(self) -> None:
        """Stop polling and close the consumer (without committing anything more).

        A consumer thread that does not finish within ``call_timeout_s`` (wedged inside
        the client) is left behind as the daemon thread it is, so shutdown stays bounded.
        """
        self._stopping.set()
        thread = self._thread
        if thread is None:
            return
        await trio.to_thread.run_sync(thread.join, self.call_timeout_s, abandon_on_cancel=True)
        if thread.is_alive():
            logger.error(
                "Kafka consumer of group %s did not stop within %g s: leaving its thread "
                "behind (the process exits without it)",
                self.group_id,
                self.call_timeout_s,
            )

    # -- the BusConsumer port -----------------------------------------------------

    async def poll(self, max_records: int) -> list[Record]:
        """Return the next batch from the consumer thread (waits for one).

        Every record delivered is handed on, even one whose partition was revoked
        meanwhile: its new owner may handle it again (a duplicate), never lose it.
        Raises ``BusError`` if the consumer thread has been stuck inside one
        kafka-python ``poll`` for ``STUCK_POLL_S``: the host fails loudly, not silently.
        """
        while True:
            with trio.move_on_after(_WATCH_EVERY_S):
                delivered = await self._receive.receive()
                if isinstance(delivered, BusError):
                    raise delivered
                epoch, batch = delivered
                with self._lock:
                    self._outstanding -= 1
                if epoch == self._wanted_epoch:
                    return batch
                continue  # fetched before a rewind: read again from the last commit
            self._check_not_stuck()

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` of the partitions this member still owns.

        Raises ``BusError`` when the broker refuses (the group rebalanced while the
        broker was away, the coordinator moved).
        """
        owned = {tp: offset for tp, offset in offsets.items() if tp in self.assignment}
        if not owned:
            await trio.lowlevel.checkpoint()
            return
        await self._call(lambda consumer: _commit(consumer, owned))

    async def transaction_state(self) -> TransactionState:
        """Return this member's group metadata, the revocations counted, its partitions.

        The count is kafka-python's own: its rebalance listener runs before the member
        rejoins, so metadata of a newer generation, read first, always comes with its
        revocation counted. The metadata is None unless the member is stable in a
        generation *and* holds that generation's assignment: kafka-python resets the
        generation to -1 when a heartbeat finds it fenced, before its listener learns
        anything (and the brokers accept a transaction's offsets of generation -1
        unchecked, the pre-KIP-447 form), and it marks a new generation stable just
        before it replaces the assignment.
        """

        def read(consumer: KafkaConsumer) -> TransactionState:
            assigned_before = self._assigned_generation
            metadata = consumer.group_metadata()
            owned = frozenset(_ours(tp) for tp in consumer.assignment())
            settled = (
                metadata.state == MemberState.STABLE
                and metadata.generation_id >= 0
                and bool(metadata.member_id)
                and assigned_before == metadata.generation_id == self._assigned_generation
            )
            return TransactionState(metadata if settled else None, self.revoked_by_client, owned)

        state = await self._call(read)
        assert isinstance(state, TransactionState)
        return state

    async def rewind(self) -> None:
        """Read every owned partition again from its last committed offset.

        Batches fetched before and not yet returned by :meth:`poll` are dropped.
        """
        self._wanted_epoch += 1  # before any await: nothing fetched earlier is dispatched
        epoch = self._wanted_epoch
        await self._call(lambda consumer: self._rewind(consumer, epoch))

    def _rewind(self, consumer: KafkaConsumer, epoch: int) -> None:
        self._epoch = epoch
        sought = []
        for tp in consumer.assignment():
            committed = consumer.committed(tp)
            if committed is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
            sought.append(f"{tp.topic}:{tp.partition}@{committed}")
        logger.info(
            "Kafka consumer of group %s (pid %d) reads again from %s",
            self.group_id,
            os.getpid(),
            ", ".join(sorted(sought)) or "no partition",
        )

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop fetching ``partitions``; polling goes on.

        Pausing is declarative: the consumer thread reconciles the consumer's paused
        partitions with this set before every poll, so it survives rebalances.
        """
        with self._lock:
            self._paused.update(partitions)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        """Fetch ``partitions`` again."""
        with self._lock:
            self._paused.difference_update(partitions)

    # -- trio side helpers ----------------------------------------------------------

    def _check_not_stuck(self) -> None:
        since = self.polling_since
        if since is not None and time.monotonic() - since > STUCK_POLL_S:
            stack = self._consumer_stack()
            logger.error(
                "Kafka consumer of group %s is stuck inside KafkaConsumer.poll; its thread "
                "is at:\n%s\nkafka-python's IO threads are at:\n%s",
                self.group_id,
                "".join(stack),
                _io_thread_stacks(),
            )
            where = stack[-1].strip().replace("\n", " ") if stack else "unknown"
            raise BusError(
                f"Kafka consumer of group {self.group_id!r} has been inside one "
                f"KafkaConsumer.poll(timeout_ms=50) for {time.monotonic() - since:.0f} s, "
                f"its thread at {where} (whole stack in the log): kafka-python's client is "
                "hung. Stopping rather than stalling silently; restart the host (its "
                "supervisor should)."
            )

    def _consumer_stack(self) -> list[str]:
        """Return the consumer thread's stack now, innermost frame last (evidence of a hang)."""
        thread = self._thread
        frame = None if thread is None else sys._current_frames().get(thread.ident or -1)
        return [] if frame is None else traceback.format_stack(frame)

    async def _call(self, command: Callable[[KafkaConsumer], object]) -> object:
        done = trio.Event()
        outcome: list[object] = []

        def run(consumer: KafkaConsumer) -> None:
            try:
                outcome.append(command(consumer))
            except (KafkaError, OSError) as exc:
                outcome.append(BusError(f"Kafka consumer call failed: {type(exc).__name__}: {exc}"))
            self._soon(done.set)

        self._commands.put(run)
        with trio.move_on_after(self.call_timeout_s):
            await done.wait()
        if not done.is_set():
            raise BusError(
                f"Kafka consumer of group {self.group_id!r} did not answer within "
                f"{self.call_timeout_s:g} s: its thread is busy or wedged inside the client"
            )
        if outcome and isinstance(outcome[0], BusError):
            raise outcome[0]
        return outcome[0] if outcome else None

    def _soon(self, fn: Callable[..., object], *args: object) -> None:
        assert self._token is not None
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(fn, *args)

    def _deliver(self, epoch: int, batch: list[Record]) -> None:
        self._send.send_nowait((epoch, batch))

    def _died(self, error: BusError) -> None:
        self._send.send_nowait(error)

    def _revoked(self, revoked: list[TopicPartition]) -> None:
        self.rebalances += 1
        self._change_assignment((), revoked)

    def _assigned(self, assigned: list[TopicPartition]) -> None:
        self._change_assignment(assigned, ())

    # -- the consumer thread -------------------------------------------------------

    def _run(self) -> None:
        try:
            consumer = KafkaConsumer(
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self.max_poll_records,
                metadata_max_age_ms=5000,
                session_timeout_ms=self.session_timeout_ms,
                max_poll_interval_ms=60_000,  # our poll loop never waits on handlers
                heartbeat_interval_ms=min(3_000, self.session_timeout_ms // 3),
                isolation_level=self.isolation_level,
                **self.client_config,
            )
            repair_consumer(consumer)
            self._consumer = consumer
            if self.topics is not None:
                consumer.subscribe(topics=self.topics, listener=_Listener(self))
                # the group's leader assigns from this metadata: fetched before the first
                # join (one call fetches every topic's), or a fresh broker's first join
                # logs "No partition metadata" warnings
                if self.topics:
                    consumer.partitions_for_topic(self.topics[0])
            else:
                consumer.subscribe(pattern=self.regex, listener=_Listener(self))
        except (KafkaError, OSError, ValueError) as exc:
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        behind = False
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    behind = self._poll_once(consumer, behind)
                    failures = 0
                except (KafkaError, OSError) as exc:
                    # e.g. pausing a partition a concurrent rebalance just took away
                    failures += 1
                    logger.warning("Kafka consumer of group %s: %s", self.group_id, exc)
                    if failures >= 50:
                        raise
            self._run_commands(consumer)
        except BaseException as exc:
            logger.error("Kafka consumer of group %s stopped: %s", self.group_id, exc)
            self._soon(
                self._died, BusError(f"Kafka consumer of group {self.group_id!r} stopped: {exc}")
            )
        finally:
            consumer.close(autocommit=False)

    def _poll_once(self, consumer: KafkaConsumer, behind: bool) -> bool:
        self._run_commands(consumer)
        with self._lock:
            outstanding = self._outstanding
            paused = set(self._paused)
        # trio has not taken the last batches yet: hold every partition, keep polling
        if outstanding >= _MAX_OUTSTANDING_BATCHES:
            behind = True
        elif outstanding < _MAX_OUTSTANDING_BATCHES // 2:
            behind = False
        _reconcile_pauses(consumer, paused, hold_all=behind)
        self.polling_since = time.monotonic()
        try:
            fetched = consumer.poll(timeout_ms=50, max_records=self.max_poll_records)
        except UnreadableRecord as unreadable:
            batch = [self._skip_unreadable(consumer, unreadable)]
        else:
            batch = [
                Record(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
                for records in fetched.values()
                for r in records
            ]
            for tp in fetched:  # as of this fetch: kafka-python keeps it from the response
                if (end := consumer.highwater(tp)) is not None:
                    self._ends[_ours(tp)] = end
        finally:
            self.polling_since = None
        if batch:
            with self._lock:
                self._outstanding += 1
            self._soon(self._deliver, self._epoch, batch)
        # only after the batch is handed over: nothing fetched may be dropped on the way
        self._stalls.check(consumer)
        return behind

    def _skip_unreadable(self, consumer: KafkaConsumer, unreadable: UnreadableRecord) -> Record:
        """Seek past a record the client cannot read; return it for a dead letter.

        Each offset of an unreadable batch is met (and dead-lettered) on its own: the
        broker hands back the whole batch for any offset inside it.
        """
        logger.error("Kafka consumer of group %s cannot read %s", self.group_id, unreadable)
        consumer.seek(
            KafkaTopicPartition(unreadable.topic, unreadable.partition), unreadable.offset + 1
        )
        cause = unreadable.cause
        return Record(
            unreadable.topic,
            unreadable.partition,
            unreadable.offset,
            None,
            None,
            unreadable=f"{type(cause).__name__}: {cause}",
        )

    def _run_commands(self, consumer: KafkaConsumer) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            command(consumer)

    def _on_revoked(self, revoked: Any) -> None:
        # Runs on kafka-python's IO thread, which must not block and must not be
        # re-entered; nothing is committed here. The periodic commit already covers
        # what is done, and the next owner re-reads the rest: duplicates, never loss.
        if revoked:
            self.revoked_by_client += 1
        self._soon(self._revoked, [_ours(tp) for tp in revoked])

    def _on_assigned(self, assigned: Any) -> None:
        consumer = self._consumer
        if consumer is not None:  # the generation whose assignment is now in place
            self._assigned_generation = consumer.group_metadata().generation_id
        self._soon(self._assigned, [_ours(tp) for tp in assigned])


def _io_thread_stacks() -> str:
    """Where kafka-python's IO threads are now: a poll waits on one without a timeout."""
    frames = sys._current_frames()
    return "\n".join(
        f"{thread.name}:\n" + "".join(traceback.format_stack(frames[thread.ident]))
        for thread in threading.enumerate()
        if thread.name.startswith("kafka-io") and thread.ident in frames
    )


def _reconcile_pauses(
    consumer: KafkaConsumer, paused: set[TopicPartition], *, hold_all: bool
) -> None:
    assignment = consumer.assignment()
    want = {tp for tp in assignment if hold_all or _ours(tp) in paused}
    have = set(consumer.paused())
    if want - have:
        consumer.pause(*(want - have))
    if have - want:
        consumer.resume(*(have - want))


def _ours(tp: KafkaTopicPartition) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


def _kafka_offsets(offsets: Mapping[TopicPartition, int]) -> dict[KafkaTopicPartition, Any]:
    return {
        KafkaTopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "", -1)
        for tp, offset in offsets.items()
    }


def _commit(consumer: KafkaConsumer, offsets: Mapping[TopicPartition, int]) -> None:
    consumer.commit(offsets=_kafka_offsets(offsets))
