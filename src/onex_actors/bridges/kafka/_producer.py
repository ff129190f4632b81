"""kafka-python's producer behind a worker thread, acknowledging into trio.

With a ``transactional_id`` it is a transactional producer (``delivery: exactly_once``):
a transaction is always open; :meth:`ProducerBridge.commit_transaction` queues behind
the records already queued, binds the consumer's offsets to them (KIP-447: with the
consumer's group metadata, so a member of an older generation is fenced) and commits.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import trio
from kafka import KafkaProducer
from kafka.errors import (
    InvalidProducerEpochError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    ProducerFencedError,
    RecordListTooLargeError,
    TransactionalIdAuthorizationFailedError,
)
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KafkaTopicPartition

from onex_actors.core import BusError, ConfigError, TransactionAborted
from onex_actors.runtime import BatchAck, OutboundRecord, TopicPartition

from .._acks import AckRuns, Settling

__all__ = ["ProducerBridge"]

logger = logging.getLogger("onex_actors.kafka")
_STOP = object()
_TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)
_FENCED = (ProducerFencedError, InvalidProducerEpochError)


class _OutputsFailed(KafkaError):  # type: ignore[misc]
    """Outputs of the open transaction failed: it is aborted instead of committed."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"{count} output(s) of the transaction failed; aborting it rather than "
            "committing offsets without their results"
        )


class _Commit:
    """A transaction commit queued behind the records it carries."""

    __slots__ = ("done", "group_metadata", "offsets", "outcome")

    def __init__(self, offsets: Mapping[TopicPartition, int], group_metadata: object) -> None:
        self.offsets = offsets
        self.group_metadata = group_metadata
        self.done = threading.Event()
        self.outcome: BaseException | None = None


class ProducerBridge:
    """Owns a ``KafkaProducer`` in its own thread.

    ``publish`` hands the record to the thread and returns; the broker's acknowledgement
    arrives later through ``on_ack``, on the trio thread. Records with the same key keep
    their order (idempotent producer, acks=all).
    """

    def __init__(
        self,
        client_config: Mapping[str, Any],
        *,
        queue_size: int = 10_000,
        max_request_bytes: int = 1024 * 1024,
        close_timeout_s: float = 10.0,
        transactional_id: str | None = None,
        transaction_timeout_ms: int = 60_000,
        renew_when_fenced: bool = False,
    ) -> None:
        self.client_config = dict(client_config)
        self.transactional_id = transactional_id
        """Set for a transactional producer (``delivery: exactly_once``)."""
        self.transaction_timeout_ms = transaction_timeout_ms
        self.renew_when_fenced = renew_when_fenced
        """The transactional id is this process's own (generated, with its pid): a fencing
        can only be the brokers aborting a transaction at its timeout (a broker outage
        longer than it), so a new producer goes on. With an id from the config, another
        host may hold it: a fencing stops the host."""
        self.transactions = 0
        """Transactions committed."""
        self.aborted_transactions = 0
        self._failed_in_transaction = 0
        """Outputs of the open transaction that failed: it must not commit then."""
        self.max_request_bytes = max_request_bytes
        self.close_timeout_s = close_timeout_s
        """How long closing waits for records still undelivered (a broker gone)."""
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None

        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._acks = AckRuns()
        self.failed_acks = 0
        self.replacements = 0
        """How many times a producer in a fatal state was replaced by a new one."""
        self._producer: Any = None

    async def start(self) -> None:
        """Connect the producer (in its thread) and wait until it is ready."""
        self._acks.bind()
        self._thread = threading.Thread(target=self._run, name="onex-kafka-producer", daemon=True)
        self._thread.start()
        await trio.to_thread.run_sync(self._ready.wait)
        if isinstance(self._failure, ConfigError):
            raise self._failure
        if self._failure is not None:
            raise BusError(f"cannot start the Kafka producer: {self._failure}") from None

    async def commit_transaction(
        self, offsets: Mapping[TopicPartition, int], group_metadata: object
    ) -> None:
        """Commit the open transaction with ``offsets``, then open the next one.

        Carries every record queued before this call. Raises ``TransactionAborted`` when
        the brokers refused it (the group moved to a newer generation, a record in it
        failed): it was aborted, nothing of it is visible. Raises ``BusError`` when the
        producer is fenced (another producer took its transactional id) or broken.
        """
        command = _Commit(offsets, group_metadata)
        await trio.to_thread.run_sync(self._queue.put, command)
        await trio.to_thread.run_sync(command.done.wait, abandon_on_cancel=True)
        if command.outcome is not None:
            raise command.outcome

    async def publish(self, records: Sequence[OutboundRecord], on_ack: BatchAck | None) -> None:
        """Queue ``records``; wait only while the producer's queue is full.

        Either all are queued or the call is cancelled, never both.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if not records:
            if on_ack is not None:
                on_ack(())
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        item = (records, None if on_ack is None else self._acks.settling(on_ack, len(records)))
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            await trio.to_thread.run_sync(self._queue.put, item)
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def aclose(self) -> None:
        """Flush what is queued, then close the producer, within about ``close_timeout_s``.

        The runtime has waited for its acknowledgements before this: what is still
        undelivered now (a broker that went away) is given up after ``close_timeout_s``,
        never waited for without end; nothing past the last commit was committed.
        """
        if self._thread is None:
            return
        await trio.to_thread.run_sync(self._queue.put, _STOP)
        await trio.to_thread.run_sync(self._thread.join, 2 * self.close_timeout_s + 5)
        if self._thread.is_alive():
            logger.error(
                "Kafka producer did not close within %g s: leaving its thread",
                2 * self.close_timeout_s + 5,
            )

    def _open_transactions(self, producer: KafkaProducer) -> None:
        """Fence older producers of our id (aborting their open transaction), open one."""
        try:
            producer.init_transactions()
        except TransactionalIdAuthorizationFailedError as exc:
            raise ConfigError(
                f"the brokers refuse transactional id {self.transactional_id!r}: {exc}; "
                "grant the runtime's user WRITE on it, or use delivery: at_least_once"
            ) from None
        except (KafkaError, OSError) as exc:
            raise ConfigError(
                f"cannot start transactions (delivery: exactly_once) with transactional id "
                f"{self.transactional_id!r}: {type(exc).__name__}: {exc}. Does the broker "
                "support Kafka transactions (tansu does not)? Else use delivery: "
                "at_least_once"
            ) from None
        self._failed_in_transaction = 0
        producer.begin_transaction()

    def _begin(self) -> None:
        """Open the next transaction (none of its outputs has failed yet)."""
        self._failed_in_transaction = 0
        self._producer.begin_transaction()

    def _commit(self, command: _Commit) -> None:
        producer = self._producer
        offsets = {
            KafkaTopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "", -1)
            for tp, offset in command.offsets.items()
        }
        try:
            producer.flush()  # every output of the transaction acknowledged or failed first
            if self._failed_in_transaction:
                raise _OutputsFailed(self._failed_in_transaction)
            if offsets:
                producer.send_offsets_to_transaction(offsets, command.group_metadata)
            producer.commit_transaction()
            self.transactions += 1
        except (KafkaError, OSError) as exc:
            if not self._fenced(exc) or self.renew_when_fenced:
                command.outcome = self._abort(exc)  # a new producer, its transaction open
                return
            command.outcome = BusError(
                f"the Kafka producer with transactional id {self.transactional_id!r} was "
                f"fenced ({type(exc).__name__}): another host uses the same id. Each host "
                "needs its own delivery.transactional_id",
                reason="producer_fenced",
            )
            return
        self._begin()

    def _fenced(self, error: BaseException) -> bool:
        """Whether ``error`` (or the transaction's recorded error) is a fencing.

        Another producer took our transactional id; kafka-python wraps it at times.
        """
        manager = getattr(self._producer, "_transaction_manager", None)
        last = getattr(manager, "_last_error", None)
        return any(
            isinstance(e, _FENCED) or any(isinstance(a, _FENCED) for a in e.args)
            for e in (error, last)
            if e is not None
        )

    def _abort(self, cause: BaseException) -> BaseException:
        """Abort the open transaction after ``cause``; return what to tell the runtime."""
        self.aborted_transactions += 1
        try:
            if not self._fenced(cause):  # a fenced producer cannot abort; the brokers did
                self._producer.abort_transaction()
        except (KafkaError, OSError) as exc:
            # e.g. after a broker restart kafka-python bumps the epoch itself and then
            # refuses the abort ("Invalid transition ... READY to ABORTING_TRANSACTION"):
            # the new producer's init_transactions fences this one and has the brokers
            # abort whatever it left open, as confluent's bridge does
            logger.warning(
                "Kafka producer: the failed transaction (%s: %s) could not be aborted (%s: %s); "
                "replacing the producer, whose start aborts it",
                type(cause).__name__,
                cause,
                type(exc).__name__,
                exc,
            )
        try:
            self._renew()
        except (KafkaError, OSError, ConfigError) as exc:
            return BusError(
                f"a Kafka transaction was aborted and the producer could not start again: {exc}",
                reason="transaction_failed",
            )
        return TransactionAborted(
            f"Kafka transaction aborted: {type(cause).__name__}: {cause}; its input records "
            "are read again from the last committed offsets"
        )

    def _renew(self) -> None:
        """Replace the producer by a new one of the same transactional id.

        Its ``init_transactions`` bumps the producer epoch, so a batch of the aborted
        transaction still in flight (sent before the abort, retried after it) is
        refused by the brokers instead of joining the next transaction: with the same
        epoch, kafka-python 3.0 would carry it into the next transaction, which commits
        it (the three-hosts fault scenario saw hundreds of such results twice).
        """
        old = self._producer
        with contextlib.suppress(KafkaError, OSError):
            old.close(timeout=self.close_timeout_s)
        self._producer = self._new_producer()
        self._open_transactions(self._producer)

    def _new_producer(self) -> KafkaProducer:
        # Results arrive as lists of a poll's size: 256 KiB batches carry one list in a
        # few requests (kafka-python's 16 KiB default cost 30 % of the producer thread's
        # time in per-batch work), and a 1 ms linger sends it without the 5 ms wait the
        # ping latency showed (docs/benchmarks.md, "Batch-first data path").
        transactional: dict[str, Any] = {}
        if self.transactional_id is not None:
            transactional = {
                "transactional_id": self.transactional_id,
                "transaction_timeout_ms": self.transaction_timeout_ms,
            }
        return KafkaProducer(
            acks="all",
            enable_idempotence=True,
            linger_ms=1,
            batch_size=256 * 1024,
            max_request_size=self.max_request_bytes,
            **transactional,
            **self.client_config,
        )

    def _run(self) -> None:
        try:
            self._producer = self._new_producer()
            if self.transactional_id is not None:
                self._open_transactions(self._producer)
        except (KafkaError, OSError, ValueError, ConfigError) as exc:
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while self._send_queued():
                pass
        finally:
            try:
                if self.transactional_id is not None:
                    self._abort_open_transaction()
                self._producer.close(timeout=self.close_timeout_s)  # flushes first
            except KafkaTimeoutError:
                logger.error(
                    "Kafka producer: records still undelivered after %g s at close (is the "
                    "broker gone?); closing without them",
                    self.close_timeout_s,
                )
                self._force_close(self._producer)

    def _abort_open_transaction(self) -> None:
        """Abort the transaction left open at close (its records were never committed)."""
        try:
            self._producer.abort_transaction()
        except (KafkaError, OSError) as exc:
            logger.info("Kafka producer: the open transaction ends at its timeout: %s", exc)

    def _force_close(self, producer: KafkaProducer) -> None:
        """Stop a producer whose close gave up.

        kafka-python's close raises when its flush times out, before it would force its
        sender (and its connections) closed.
        """
        sender = getattr(producer, "_sender", None)
        if sender is None:
            return
        sender.force_close()
        sender.join(self.close_timeout_s)

    def _send_queued(self) -> bool:
        """Send what is queued (waiting for at least one item); False once stopped."""
        item = self._queue.get()
        while True:
            if item is _STOP:
                return False
            if isinstance(item, _Commit):
                try:
                    self._commit(item)
                except Exception as exc:  # never leave the runtime waiting on a commit
                    item.outcome = BusError(f"Kafka transaction commit failed: {exc!r}")
                finally:
                    item.done.set()
                item = self._next_queued()
                if item is None:
                    return True
                continue
            assert isinstance(item, tuple)
            records, settling = item
            self._replace_if_fatal()
            for index, record in enumerate(records):
                self._send(self._producer, record, settling, index)
            item = self._next_queued()
            if item is None:
                return True

    def _next_queued(self) -> object | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def _replace_if_fatal(self) -> None:
        """Replace a producer that kafka-python has put in its fatal state.

        kafka-python's idempotent producer treats the broker refusing one record as too
        large as fatal (the Java client fails that batch alone): every later record
        would fail too. The old producer's records fail to their callers, who replace
        them; new records go to a new producer.
        """
        manager = getattr(self._producer, "_transaction_manager", None)
        if manager is None or not manager.has_fatal_error() or self.transactional_id is not None:
            return  # a transactional producer's failure fails its transaction instead
        logger.warning("the Kafka producer hit a fatal error: replacing it")
        self.replacements += 1
        self._producer.close(timeout=5)
        self._producer = self._new_producer()

    def _send(
        self,
        producer: KafkaProducer,
        record: OutboundRecord,
        settling: Settling | None,
        index: int,
    ) -> None:
        topic = record.topic
        try:
            future = producer.send(
                topic,
                value=record.value,
                key=record.key,
                headers=list(record.headers),
                partition=record.partition,
            )
        except (KafkaError, OSError, ValueError) as exc:
            self._acknowledge(settling, index, exc, topic)
            return
        if settling is not None:
            future.add_callback(lambda _metadata: settling.ok())
        future.add_errback(lambda exc: self._acknowledge(settling, index, exc, topic))

    def _acknowledge(
        self, settling: Settling | None, index: int, error: BaseException, topic: str
    ) -> None:
        """Count the record at ``index`` of ``settling``'s list failed with ``error``."""
        self.failed_acks += 1
        self._failed_in_transaction += 1
        reason = "result_too_large" if isinstance(error, _TOO_LARGE) else "produce_failed"
        failure = BusError(
            f"producing to {topic} failed: {type(error).__name__}: {error}", reason=reason
        )
        logger.error("%s", failure)
        if settling is not None:
            settling.failed(index, failure)
