"""confluent-kafka's producer (librdkafka): records produced from trio, reports served by a thread.

``Producer.produce`` only queues a record inside librdkafka, so it is called on the trio
thread. A poller thread serves delivery reports (``Producer.poll``, which waits in C
without the GIL) and hands them to trio once per run of reports, not once per record.

With a ``transactional_id`` it is a transactional producer (``delivery: exactly_once``):
a transaction is always open; :meth:`ConfluentProducerBridge.commit_transaction` binds
the consumer's offsets (with its group metadata, KIP-447) to every record produced
before it and commits, in a worker thread, while ``publish`` waits.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import trio
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka import TopicPartition as CKTopicPartition

from onex_actors.core import BusError, ConfigError, TransactionAborted
from onex_actors.runtime import BatchAck, OutboundRecord, TopicPartition

from .._acks import AckRuns, Settling
from ._client_log import CLIENT_LOGGER

__all__ = ["ConfluentProducerBridge"]

logger = logging.getLogger("onex_actors.kafka")

TRANSACTION_CALL_TIMEOUT_S = 10.0
"""How long one transaction call (init, send offsets, commit, abort) may block."""
WEDGED_MARGIN_S = 20.0
"""Past the transaction timeout (after which the brokers abort it anyway), how long a
commit may still take before the producer counts as wedged and is replaced."""
_FENCED = (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)


def _retrying(call: Callable[[], object], deadline: float) -> None:
    """Run a transaction call again while librdkafka says it may, until ``deadline``."""
    while True:
        try:
            call()
            return
        except KafkaException as exc:
            error = exc.args[0]
            if not error.retriable() or time.monotonic() > deadline:
                raise
            logger.info("Kafka transaction call failed, again: %s", error.str())


class ConfluentProducerBridge:
    """One librdkafka producer: idempotent, ``acks=all``, per-key order kept."""

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        max_request_bytes: int = 1024 * 1024,
        transactional_id: str | None = None,
        transaction_timeout_ms: int = 60_000,
        renew_when_fenced: bool = False,
    ) -> None:
        self.transactional_id = transactional_id
        """Set for a transactional producer (``delivery: exactly_once``)."""
        self.renew_when_fenced = renew_when_fenced
        """The transactional id is this process's own: a fencing can only be the brokers
        aborting a transaction at its timeout, so a new producer goes on (else it stops
        the host: another host holds the id)."""
        self.transaction_timeout_s = transaction_timeout_ms / 1000
        self.transactions = 0
        """Transactions committed."""
        self.aborted_transactions = 0
        self.replacements = 0
        """Producers replaced by a new one (fenced at a timeout, or wedged)."""
        self._failed_in_transaction = 0
        """Outputs of the open transaction that failed: it must not commit then."""
        self._turn = trio.Lock()
        """Held by a publish while it produces and by a commit: librdkafka refuses a
        record produced while a transaction commits."""
        self.config = {
            **config,
            "enable.idempotence": True,
            "acks": "all",
            # librdkafka batches what queues while requests are in flight; a linger
            # only added its length to every round trip (ping p50 2.5 → 1.3 ms, same rate)
            "linger.ms": 0,
            "message.max.bytes": max_request_bytes,
            # Kafka's default partitioner (Java, kafka-python), not librdkafka's CRC32:
            # a key goes to the same partition whichever client wrote it, which keyed
            # state (a reducer's key lives in its input partition) depends on
            "partitioner": "murmur2_random",
        }
        if transactional_id is not None:
            self.config["transactional.id"] = transactional_id
            self.config["transaction.timeout.ms"] = transaction_timeout_ms
        self.max_request_bytes = max_request_bytes
        self._producer: Producer | None = None

        self._stopping = threading.Event()
        self._poller: threading.Thread | None = None
        self._acks = AckRuns()
        self.failed_acks = 0

    async def start(self) -> None:
        """Create the producer and start serving its delivery reports."""
        self._acks.bind()
        try:
            self._producer = Producer(self.config, logger=CLIENT_LOGGER)
        except (KafkaException, ValueError, TypeError) as exc:
            raise BusError(f"cannot start the Kafka producer: {exc}") from None
        if self.transactional_id is not None:
            await trio.to_thread.run_sync(self._open_transactions, self._producer)
        self._poller = threading.Thread(target=self._serve_reports, name="onex-confluent-reports")
        self._poller.daemon = True
        self._poller.start()

    async def publish(self, records: Sequence[OutboundRecord], on_ack: BatchAck | None) -> None:
        """Queue ``records`` in librdkafka; wait (in a thread) only while its queue is full.

        Either all are queued or the call is cancelled, never part of them. A
        transactional producer's records join its open transaction (waiting while one
        commits).
        """
        if self.transactional_id is not None:
            async with self._turn:
                await self._publish(records, on_ack)
            return
        await self._publish(records, on_ack)

    async def _publish(self, records: Sequence[OutboundRecord], on_ack: BatchAck | None) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if not records:
            if on_ack is not None:
                on_ack(())
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        settling = None if on_ack is None else self._acks.settling(on_ack, len(records))
        for index, record in enumerate(records):
            try:
                self._produce(record, settling, index)
            except BufferError:  # librdkafka's queue is full: the rest waits in a thread
                await trio.to_thread.run_sync(self._produce_waiting, records, settling, index)
                return
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def commit_transaction(
        self, offsets: Mapping[TopicPartition, int], group_metadata: object
    ) -> None:
        """Commit the open transaction with ``offsets``, then open the next one.

        Carries every record published before this call. Raises ``TransactionAborted``
        when it was aborted instead (the group moved to a newer generation, a record in
        it failed): nothing of it is visible. Raises ``BusError`` when the producer is
        fenced (another producer took its transactional id) or broken.
        """
        if self.transactional_id is None:
            raise BusError("this Kafka producer is not transactional (delivery: at_least_once)")
        async with self._turn:
            deadline = time.monotonic() + self.transaction_timeout_s
            outcome: BaseException | None = None
            with trio.move_on_after(self.transaction_timeout_s + WEDGED_MARGIN_S) as waited:
                outcome = await trio.to_thread.run_sync(
                    self._commit, dict(offsets), group_metadata, deadline, abandon_on_cancel=True
                )
            if waited.cancelled_caught:
                outcome = await trio.to_thread.run_sync(self._replace_wedged)
        if outcome is not None:
            raise outcome

    async def aclose(self) -> None:
        """Deliver what is queued, then stop serving reports.

        A transactional producer aborts its open transaction (never committed) instead.
        """
        producer = self._producer
        if producer is None:
            return
        if self.transactional_id is not None:
            async with self._turn:
                await trio.to_thread.run_sync(self._abort_open_transaction)
        await trio.to_thread.run_sync(producer.flush, 30.0)
        self._stopping.set()
        if self._poller is not None:
            await trio.to_thread.run_sync(self._poller.join, 5.0)

    # -- transactions (worker threads, one at a time: the ``_turn`` lock) ---------------

    def _open_transactions(self, producer: Producer) -> None:
        """Fence older producers of our id (aborting their open transaction), open one."""
        try:
            producer.init_transactions(TRANSACTION_CALL_TIMEOUT_S)
            self._begin(producer)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
                raise ConfigError(
                    f"the brokers refuse transactional id {self.transactional_id!r}: "
                    f"{error.str()}; grant the runtime's user WRITE on it, or use "
                    "delivery: at_least_once"
                ) from None
            raise ConfigError(
                f"cannot start transactions (delivery: exactly_once) with transactional id "
                f"{self.transactional_id!r}: {error.str()}. Does the broker support Kafka "
                "transactions (tansu does not)? Else use delivery: at_least_once"
            ) from None

    def _commit(
        self, offsets: dict[TopicPartition, int], group_metadata: object, deadline: float
    ) -> BaseException | None:
        """Commit the open transaction and begin the next; return what failed, if anything.

        Retriable failures (a broker away) are retried until ``deadline``, the
        transaction's timeout, when the brokers abort it anyway.
        """
        producer = self._current()
        positions = [CKTopicPartition(tp.topic, tp.partition, o) for tp, o in offsets.items()]
        # every output acknowledged or failed first; a producer in a fatal state (fenced)
        # fails the flush oddly, and the transaction calls below say why
        with contextlib.suppress(KafkaException, SystemError):
            producer.flush(TRANSACTION_CALL_TIMEOUT_S)
        if self._failed_in_transaction:
            return self._abort_for_failed_outputs()
        try:
            if positions:
                _retrying(
                    lambda: producer.send_offsets_to_transaction(
                        positions, group_metadata, TRANSACTION_CALL_TIMEOUT_S
                    ),
                    deadline,
                )
            _retrying(lambda: producer.commit_transaction(TRANSACTION_CALL_TIMEOUT_S), deadline)
            self.transactions += 1
            self._begin(producer)
        except KafkaException as exc:
            if producer is not self._producer:  # replaced while wedged: nothing more to do
                return None
            return self._after_failure(exc.args[0])
        return None

    def _begin(self, producer: Producer) -> None:
        """Open the next transaction (none of its outputs has failed yet).

        Reports still due of the last one (purged by an abort) are served first, so they
        are not counted against this one.
        """
        producer.poll(0)
        self._failed_in_transaction = 0
        producer.begin_transaction()

    def _abort_for_failed_outputs(self) -> BaseException:
        """Abort a transaction some of whose outputs failed, rather than commit its offsets."""
        count = self._failed_in_transaction
        self.aborted_transactions += 1
        try:
            deadline = time.monotonic() + self.transaction_timeout_s
            _retrying(
                lambda: self._current().abort_transaction(TRANSACTION_CALL_TIMEOUT_S), deadline
            )
            self._begin(self._current())
        except KafkaException as exc:
            return self._renew_after(exc.args[0]) or TransactionAborted(
                f"Kafka transaction abandoned: {count} of its outputs failed"
            )
        return TransactionAborted(
            f"Kafka transaction aborted: {count} of its outputs failed; its input records "
            "are read again from the last committed offsets"
        )

    def _replace_wedged(self) -> BaseException:
        """Replace a producer stuck in a transaction call past its timeout.

        librdkafka's ``send_offsets_to_transaction`` can block past its timeout when the
        group coordinator went away (confluentinc/librdkafka#5456, #5511). The new
        producer's ``init_transactions`` fences the stuck one and aborts its transaction.
        """
        self.aborted_transactions += 1
        self.replacements += 1
        logger.warning(
            "Kafka transactional producer %r stuck in a transaction call for over %g s "
            "(librdkafka#5456): replacing it",
            self.transactional_id,
            self.transaction_timeout_s + WEDGED_MARGIN_S,
        )
        failure = self._start_new("a transaction call never returned")
        if failure is not None:
            return failure
        return TransactionAborted(
            "Kafka transaction abandoned: its commit never returned (the producer was "
            "replaced); its input records are read again from the last committed offsets"
        )

    def _after_failure(self, error: KafkaError) -> BaseException:
        """Abort (or renew the producer) after a failed commit; say what the runtime does."""
        self.aborted_transactions += 1
        aborted = TransactionAborted(
            f"Kafka transaction aborted: {error.str()}; its input records are read again "
            "from the last committed offsets"
        )
        if error.txn_requires_abort():
            deadline = time.monotonic() + self.transaction_timeout_s
            try:
                _retrying(
                    lambda: self._current().abort_transaction(TRANSACTION_CALL_TIMEOUT_S), deadline
                )
                self._begin(self._current())
            except KafkaException as exc:
                return self._renew_after(exc.args[0]) or aborted
            return aborted
        return self._renew_after(error) or aborted

    def _renew_after(self, error: KafkaError) -> BaseException | None:
        """Replace a producer in a fatal state; None when the new one goes on."""
        fenced = error.code() in _FENCED
        if fenced and not self.renew_when_fenced:
            return BusError(
                f"the Kafka producer with transactional id {self.transactional_id!r} was "
                f"fenced ({error.name()}): another host uses the same id. Each host needs "
                "its own delivery.transactional_id",
                reason="producer_fenced",
            )
        logger.warning("Kafka transactional producer: %s; starting a new producer", error.str())
        old = self._current()
        old.purge()
        old.flush(0)
        self.replacements += 1
        return self._start_new(error.str())

    def _start_new(self, cause: str) -> BaseException | None:
        """Start a new producer of our transactional id; say why not if it cannot."""
        try:
            producer = Producer(self.config, logger=CLIENT_LOGGER)
            self._open_transactions(producer)
        except (KafkaException, ConfigError) as exc:
            return BusError(
                f"a Kafka transaction failed ({cause}) and the producer could not start "
                f"again: {exc}",
                reason="transaction_failed",
            )
        self._producer = producer
        return None

    def _abort_open_transaction(self) -> None:
        """Abort the transaction left open at close (its records were never committed)."""
        try:
            self._current().abort_transaction(TRANSACTION_CALL_TIMEOUT_S)
        except KafkaException as exc:
            logger.info("Kafka producer: the open transaction ends at its timeout: %s", exc)

    def _current(self) -> Producer:
        assert self._producer is not None
        return self._producer

    # -- producing ------------------------------------------------------------------

    def _produce(self, record: OutboundRecord, settling: Settling | None, index: int) -> None:
        assert self._producer is not None
        topic = record.topic
        options: dict[str, Any] = {"on_delivery": partial(self._delivered, settling, index)}
        if record.headers:  # none on a state record: an empty list still costs librdkafka
            options["headers"] = list(record.headers)
        if record.partition is not None:
            options["partition"] = record.partition
        try:
            self._producer.produce(topic, record.value, record.key, **options)
        except KafkaException as exc:
            self._acknowledge(settling, index, exc.args[0], topic)

    def _produce_waiting(
        self, records: Sequence[OutboundRecord], settling: Settling | None, start: int
    ) -> None:
        assert self._producer is not None
        for index in range(start, len(records)):
            while True:
                try:
                    self._produce(records[index], settling, index)
                    break
                except BufferError:
                    self._producer.poll(0.05)

    def _serve_reports(self) -> None:
        while not self._stopping.is_set():
            try:
                self._current().poll(0.1)
            except KafkaException as exc:
                # a fatal error (a fenced transactional producer) is raised here once;
                # the next transaction call meets it too, and decides
                logger.warning("Kafka producer: %s", exc.args[0].str())

    def _delivered(
        self,
        settling: Settling | None,
        index: int,
        error: KafkaError | None,
        message: Message,
    ) -> None:
        if error is None:
            if settling is not None:
                settling.ok()
            return
        self._acknowledge(settling, index, error, message.topic() or "?")

    def _acknowledge(
        self, settling: Settling | None, index: int, error: KafkaError, topic: str
    ) -> None:
        """Count the record at ``index`` of ``settling``'s list failed with ``error``."""
        self.failed_acks += 1
        self._failed_in_transaction += 1
        too_large = error.code() == KafkaError.MSG_SIZE_TOO_LARGE
        reason = "result_too_large" if too_large else "produce_failed"
        failure = BusError(f"producing to {topic} failed: {error.str()}", reason=reason)
        logger.error("%s", failure)
        if settling is not None:
            settling.failed(index, failure)
