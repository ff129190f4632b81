"""kafka-python's producer behind a worker thread, acknowledging into trio."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import trio
from kafka import KafkaProducer
from kafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from onex_actors.core import BusError
from onex_actors.runtime import BatchAck, OutboundRecord

from .._acks import AckRuns, Settling

__all__ = ["ProducerBridge"]

logger = logging.getLogger("onex_actors.kafka")
_STOP = object()
_TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)


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
    ) -> None:
        self.client_config = dict(client_config)
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
        if self._failure is not None:
            raise BusError(f"cannot start the Kafka producer: {self._failure}") from None

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
        item = (records, None if on_ack is None else Settling(on_ack, len(records)))
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

    def _new_producer(self) -> KafkaProducer:
        # Results arrive as lists of a poll's size: 256 KiB batches carry one list in a
        # few requests (kafka-python's 16 KiB default cost 30 % of the producer thread's
        # time in per-batch work), and a 1 ms linger sends it without the 5 ms wait the
        # ping latency showed (docs/benchmarks.md, "Batch-first data path").
        return KafkaProducer(
            acks="all",
            enable_idempotence=True,
            linger_ms=1,
            batch_size=256 * 1024,
            max_request_size=self.max_request_bytes,
            **self.client_config,
        )

    def _run(self) -> None:
        try:
            self._producer = self._new_producer()
        except (KafkaError, OSError, ValueError) as exc:
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while self._send_queued():
                pass
        finally:
            try:
                self._producer.close(timeout=self.close_timeout_s)  # flushes first
            except KafkaTimeoutError:
                logger.error(
                    "Kafka producer: records still undelivered after %g s at close (is the "
                    "broker gone?); closing without them",
                    self.close_timeout_s,
                )
                self._force_close(self._producer)

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
            assert isinstance(item, tuple)
            records, settling = item
            self._replace_if_fatal()
            for index, record in enumerate(records):
                self._send(self._producer, record, settling, index)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return True

    def _replace_if_fatal(self) -> None:
        """Replace a producer that kafka-python has put in its fatal state.

        kafka-python's idempotent producer treats the broker refusing one record as too
        large as fatal (the Java client fails that batch alone): every later record
        would fail too. The old producer's records fail to their callers, who replace
        them; new records go to a new producer.
        """
        manager = getattr(self._producer, "_transaction_manager", None)
        if manager is None or not manager.has_fatal_error():
            return
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
                topic, value=record.value, key=record.key, headers=list(record.headers)
            )
        except (KafkaError, OSError, ValueError) as exc:
            self._acknowledge(settling, index, exc, topic)
            return
        if settling is None:
            future.add_errback(lambda exc: self._acknowledge(None, index, exc, topic))
            return
        future.add_callback(lambda _metadata: self._acknowledge(settling, index, None, topic))
        future.add_errback(lambda exc: self._acknowledge(settling, index, exc, topic))

    def _acknowledge(
        self, settling: Settling | None, index: int, error: BaseException | None, topic: str
    ) -> None:
        failure = None
        if error is not None:
            self.failed_acks += 1
            reason = "result_too_large" if isinstance(error, _TOO_LARGE) else "produce_failed"
            failure = BusError(
                f"producing to {topic} failed: {type(error).__name__}: {error}", reason=reason
            )
            logger.error("%s", failure)
        if settling is not None:
            self._acks.add(settling, index, failure)
