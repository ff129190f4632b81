"""The export process: spans read from stdin, exported over OTLP/HTTP by the SDK's exporter.

Started by a traced host (``_shipping``) as ``python -m
onex_actors.bridges.otel._export_process``. It writes ``READY`` on its stdout once loaded.
Its stdin carries length-prefixed ``marshal`` frames: first the configuration (endpoint,
headers, resource attributes, timeout), then batches of ended spans (``SpanTuple``). It
exports each batch as it comes and ends when its stdin ends: the host stopped, or died,
and nothing more will come. It ignores SIGINT and SIGTERM (a Ctrl-C or a stop reaches the
whole process group): the host's stop closes its stdin once the last spans are written.
"""

from __future__ import annotations

import logging
import marshal
import os
import signal
import sys
from contextlib import suppress
from typing import IO, Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource

from ._recorded import readable_spans
from ._shipping import READY, SCOPE

__all__ = ["main"]

NICENESS = 10
"""How much lower than the host's this process's CPU priority is."""
EXPORT_BATCH = 512
"""Spans per OTLP request (the SDK batch processor's default)."""


def read_frame(stream: IO[bytes]) -> Any:
    """Read the next frame of ``stream``; ``None`` at its end."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    size = int.from_bytes(head, "big")
    body = stream.read(size)
    if len(body) < size:
        return None  # the host died while writing: the frame is cut
    return marshal.loads(body)


def main() -> int:
    """Export what stdin carries until it ends."""
    with suppress(OSError):
        os.nice(NICENESS)  # the host's work first: spans can wait, its commands should not
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s span export: %(message)s")
    with suppress(OSError):  # a host already gone still left what it wrote on stdin
        sys.stdout.buffer.write(READY)  # loaded: the host may count on it from now on
        sys.stdout.buffer.flush()
    stdin = sys.stdin.buffer
    config = read_frame(stdin)
    if config is None:
        return 0
    exporter = OTLPSpanExporter(
        endpoint=config["endpoint"], headers=config["headers"], timeout=config["timeout_s"]
    )
    resource = Resource.create(config["resource"])
    try:
        while (batch := read_frame(stdin)) is not None:
            spans = readable_spans(batch, resource, SCOPE)
            for start in range(0, len(spans), EXPORT_BATCH):
                exporter.export(spans[start : start + EXPORT_BATCH])
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped
    return 0


if __name__ == "__main__":
    sys.exit(main())
