"""Ended spans leave the host in batches, and are encoded and exported by another process.

Building the OTLP protobuf of a span in Python costs more than recording it (about
60 µs a span on the machine of docs/benchmarks.md), and a thread of the host doing it
would take that from the host's interpreter. So the host's ``SpanShipper`` queues the
ended spans (``SpanTuple``, built-in values only) and a thread of its own writes them
every second (sooner when ``BATCH`` are queued) to the export process
(``_export_process``) as ``marshal`` frames on its stdin, which releases the interpreter
while it writes; that process turns them into the SDK's spans and exports them with the
SDK's OTLP/HTTP exporter, off the host's interpreter, at a lower CPU priority than the
host (``nice`` 10): on a busy machine the host's work comes first, and spans wait. The
process ends when its stdin does (a clean stop, or the host killed), after exporting
what it was given.

A full queue (the export process cannot keep up, or its endpoint is down) drops spans,
counted and logged, as the SDK's batch processor does: tracing never slows or stops
the host. Tests hand ``open_span_shipper`` an exporter instead (the SDK's in-memory
one), exported from the host's thread.
"""

from __future__ import annotations

import collections
import logging
import marshal
import select
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import IO

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from onex_actors.core import OnexError

from ._recorded import SpanTuple, readable_spans

__all__ = [
    "READY",
    "SCOPE",
    "ExportProcessError",
    "SpanShipper",
    "open_span_shipper",
    "write_frame",
]

logger = logging.getLogger("onex_actors.tracing")

SCOPE = InstrumentationScope("onex_actors")
"""The instrumentation scope of every span the runtime records."""

MAX_QUEUED = 32_768
"""Spans held for export at most; more are dropped (counted) until the queue drains."""
BATCH = 2_048
"""Spans per frame written to the export process; so many queued are sent at once."""
LOOK_S = 0.1
"""How often the shipper looks at its queue (it sends every ``interval_s`` or ``BATCH``)."""
READY = b"ready\n"
"""What the export process writes on its stdout once it has loaded."""
START_TIMEOUT_S = 60.0
"""How long the export process may take to load (a cold disk, a busy machine)."""
EXPORT_TIMEOUT_S = 10.0
"""How long one export to the endpoint may take (the OTLP exporter's own retries in it)."""


def write_frame(stream: IO[bytes], value: Mapping[str, object] | list[SpanTuple]) -> None:
    """Write ``value`` to ``stream`` as one length-prefixed ``marshal`` frame."""
    body = marshal.dumps(value)  # type: ignore[arg-type]  # built-in values only
    stream.write(len(body).to_bytes(4, "big") + body)
    stream.flush()


class SpanShipper:
    """Queues ended spans and hands them to ``send`` in batches, from a thread of its own."""

    def __init__(
        self,
        send: Callable[[list[SpanTuple]], None],
        *,
        loaded: Callable[[], None] = lambda: None,
        interval_s: float = 1.0,
    ):
        self.send = send
        self.wait_loaded = loaded
        """Block until the export is ready (the export process has loaded)."""
        self.interval_s = interval_s
        self.dropped = 0
        """Spans dropped because the queue was full."""
        self._queue: collections.deque[SpanTuple] = collections.deque()
        self._stopping = threading.Event()
        self._sending = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="onex-span-shipper", daemon=True)
        self._thread.start()

    def ended(self, span: SpanTuple) -> None:
        """Queue ``span`` for export (a ``RecordedSpan``'s end)."""
        if len(self._queue) >= MAX_QUEUED:
            self.dropped += 1
            if self.dropped in (1, 1_000, 100_000) or self.dropped % 1_000_000 == 0:
                logger.warning(
                    "spans dropped: %d so far (%d queued for export, the most held); "
                    "the export process or its OTLP endpoint is not keeping up",
                    self.dropped,
                    MAX_QUEUED,
                )
            return
        self._queue.append(span)

    def flush(self) -> None:
        """Send what is queued now, from the caller's thread."""
        with self._sending:
            queue = self._queue
            while queue:
                batch = [queue.popleft() for _ in range(min(len(queue), BATCH))]
                try:
                    self.send(batch)
                except Exception:  # the export's own failure, never the host's
                    logger.exception("%d spans could not be exported", len(batch))

    def stop(self) -> None:
        """Send what is queued and stop the thread; log how many spans were dropped."""
        self._stopping.set()
        self._thread.join()
        if self.dropped:
            logger.warning(
                "spans dropped in all: %d (the export could not keep up with them)", self.dropped
            )

    def _run(self) -> None:
        waited = 0.0
        while not self._stopping.wait(LOOK_S):
            waited += LOOK_S
            if waited >= self.interval_s or len(self._queue) >= BATCH:
                waited = 0.0
                self.flush()
        self.flush()


class ExportProcessError(OnexError):
    """The span export process did not start."""


class _ExportProcess:
    """The export process (``_export_process``), fed frames on its stdin."""

    def __init__(self, config: Mapping[str, object]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "onex_actors.bridges.otel._export_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.gone = False
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.stdin = self.process.stdin
        self.stdout = self.process.stdout
        with suppress(OSError):  # ended already: ``wait_loaded`` says so
            write_frame(self.stdin, dict(config))

    def wait_loaded(self) -> None:
        """Block until the process has loaded (its start is the host's, not its first work's).

        Raises ``ExportProcessError`` if it ends or takes over ``START_TIMEOUT_S`` first.
        """
        readable, _, _ = select.select([self.stdout], [], [], START_TIMEOUT_S)
        said = self.stdout.readline() if readable else b""
        if said != READY:
            self.process.kill()
            code = self.process.wait()
            raise ExportProcessError(
                f"the span export process (python -m onex_actors.bridges.otel._export_process) "
                f"did not start: "
                f"{f'exit {code}' if readable else f'no answer in {START_TIMEOUT_S:g} s'}; "
                "its error is above. Check that the tracing extra is installed "
                "(pip install 'onex-actors[tracing]'), or set tracing.enabled: false"
            )

    def send(self, batch: list[SpanTuple]) -> None:
        if self.gone:
            return
        try:
            write_frame(self.stdin, batch)
        except (ValueError, OSError):  # closed, or the process is gone (a broken pipe)
            self.gone = True
            logger.error(
                "the span export process ended (exit %s): spans are no longer exported",
                self.process.poll(),
            )

    def close(self) -> None:
        with suppress(OSError):
            self.stdin.close()
        try:
            self.process.wait(timeout=EXPORT_TIMEOUT_S + 5)
        except subprocess.TimeoutExpired:
            logger.warning("the span export process did not finish its exports: stopped")
            self.process.kill()
            self.process.wait()
        self.stdout.close()


@contextmanager
def open_span_shipper(
    *,
    endpoint: str,
    resource: Mapping[str, str],
    headers: Mapping[str, str] | None = None,
    exporter: SpanExporter | None = None,
) -> Iterator[SpanShipper]:
    """Yield a shipper exporting to ``endpoint`` from an export process; flush and stop it after.

    With ``exporter`` (tests: the SDK's in-memory one) spans are exported with it instead,
    from the shipper's thread.
    """
    if exporter is not None:
        given = exporter
        sdk_resource = Resource.create(dict(resource))

        def export(batch: list[SpanTuple]) -> None:
            given.export(readable_spans(batch, sdk_resource, SCOPE))

        shipper = SpanShipper(export)
        try:
            yield shipper
        finally:
            shipper.stop()
            given.shutdown()
        return
    process = _ExportProcess(
        {
            "endpoint": endpoint,
            "headers": dict(headers or {}),
            "resource": dict(resource),
            "timeout_s": EXPORT_TIMEOUT_S,
        }
    )
    shipper = SpanShipper(process.send, loaded=process.wait_loaded)
    try:
        yield shipper
    finally:
        shipper.stop()
        process.close()
