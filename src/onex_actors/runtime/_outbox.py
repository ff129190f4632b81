"""Publishing envelopes: encode, key, and hand them to the bus with acknowledgement."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial

import trio
from pydantic import JsonValue

from onex_actors.core import (
    OnexEnvelope,
    encode_envelope,
    log_envelope,
    log_topic,
    record_headers,
    record_key,
)

from ._ports import AckCallback, Bus, OutboundRecord
from ._ticket import Ticket

__all__ = ["Outbox", "RuntimeLog"]

logger = logging.getLogger("onex_actors.runtime")


class Outbox:
    """Encodes envelopes and publishes them, counting each against a ``Ticket``."""

    def __init__(self, bus: Bus, *, max_envelope_bytes: int) -> None:
        self.bus = bus
        self.max_envelope_bytes = max_envelope_bytes
        self.unacknowledged = 0
        """Records handed to the bus whose acknowledgement has not come back yet."""
        self.failed = 0
        self._settled = trio.Event()
        self._settled.set()

    async def emit(self, envelope: OnexEnvelope, topic: str, ticket: Ticket | None = None) -> None:
        """Publish ``envelope`` on ``topic``; raises ``EnvelopeError`` if it is oversize."""
        value = encode_envelope(envelope, max_bytes=self.max_envelope_bytes)
        record = OutboundRecord(
            topic=topic,
            value=value,
            key=record_key(envelope),
            headers=tuple(record_headers(envelope)),
        )
        on_ack = ticket.expect() if ticket is not None else None
        self.unacknowledged += 1
        if self._settled.is_set():
            self._settled = trio.Event()
        try:
            await self.bus.publish(record, partial(self._acknowledged, on_ack))
        except BaseException:
            self._acknowledged(None, None)
            raise

    async def wait_acknowledged(self, timeout_s: float) -> bool:
        """Wait until every published record is acknowledged; return whether all were."""
        with trio.move_on_after(timeout_s):
            await self._settled.wait()
        return self._settled.is_set()

    def _acknowledged(self, on_ack: AckCallback | None, error: BaseException | None) -> None:
        self.unacknowledged -= 1
        if error is not None:
            self.failed += 1
        if self.unacknowledged == 0:
            self._settled.set()
        if on_ack is not None:
            on_ack(error)


class RuntimeLog:
    """Start, stop, restart, dlq and health changes: to the log topic and the process log."""

    def __init__(self, outbox: Outbox, runtime_id: str) -> None:
        self.outbox = outbox
        self.runtime_id = runtime_id
        self.topic = log_topic(runtime_id)

    async def event(
        self,
        event: str,
        details: Mapping[str, JsonValue] | None = None,
        *,
        level: int = logging.INFO,
    ) -> None:
        """Record ``event`` with ``details``."""
        extra = " ".join(f"{k}={v}" for k, v in (details or {}).items())
        logger.log(level, "%s %s %s", self.runtime_id, event, extra)
        await self.outbox.emit(log_envelope(self.runtime_id, event, details), self.topic)
