"""Following result, dead-letter and log topics, indexed by correlation id."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable

import trio

from onex_actors.core import EnvelopeType, OnexEnvelope, TopicPattern, decode_envelope
from onex_actors.runtime import Bus

__all__ = ["DEFAULT_TIMEOUT_S", "EnvelopeCollector"]

DEFAULT_TIMEOUT_S = 60.0
"""How long harness waits last before raising ``TimeoutError``."""

FOLLOWED = (
    "onex.app.local.global.evt.node.#",
    "onex.app.local.global.dlq.node.#",
    "onex.sys.local.global.log.runtime.#",
)


class EnvelopeCollector:
    """Reads every evt, dlq and log envelope from a bus in its own consumer group."""

    def __init__(self, bus: Bus, patterns: tuple[str, ...] = FOLLOWED) -> None:
        self.bus = bus
        self.patterns = tuple(TopicPattern(p) for p in patterns)
        self.by_correlation: defaultdict[uuid.UUID, list[OnexEnvelope]] = defaultdict(list)
        self.by_topic: defaultdict[str, list[OnexEnvelope]] = defaultdict(list)
        self._changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Collect until cancelled."""
        group = f"onex-test-collector-{uuid.uuid4().hex[:12]}"
        async with self.bus.consumer(self.patterns, group) as consumer:
            task_status.started()
            while True:
                for record in await consumer.poll(1000):
                    envelope = decode_envelope(record.value)
                    self.by_topic[record.topic].append(envelope)
                    if envelope.type is not EnvelopeType.LOG:
                        self.by_correlation[envelope.correlation_id].append(envelope)
                self._changed.set()
                self._changed = trio.Event()

    async def wait_until(
        self, predicate: Callable[[], object], *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        """Wait until ``predicate()`` is true, re-checking as envelopes arrive.

        Raises ``TimeoutError`` after ``timeout_s`` (trio's clock), so a test never hangs.
        """
        with trio.move_on_after(timeout_s):
            while not predicate():
                await self._changed.wait()
            return
        raise TimeoutError(f"condition still false after {timeout_s:g} s of waiting for envelopes")

    async def results(
        self,
        correlation_id: uuid.UUID,
        *,
        count: int = 1,
        kind: EnvelopeType = EnvelopeType.EVT,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> list[OnexEnvelope]:
        """Wait for ``count`` envelopes of ``kind`` in the flow ``correlation_id``."""

        def found() -> list[OnexEnvelope]:
            return [e for e in self.by_correlation[correlation_id] if e.type is kind]

        try:
            await self.wait_until(lambda: len(found()) >= count, timeout_s=timeout_s)
        except TimeoutError:
            raise TimeoutError(
                f"{len(found())} of {count} {kind.value} envelope(s) for correlation id "
                f"{correlation_id} after {timeout_s:g} s"
            ) from None
        return found()
