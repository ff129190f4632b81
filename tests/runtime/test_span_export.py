"""Spans leave a traced host through its export process, over OTLP/HTTP, to a real receiver.

The receiver is an HTTP server on 127.0.0.1 that decodes each export as an OTLP
collector does (the protobuf ``ExportTraceServiceRequest``); the export process is the
one a host starts (``python -m onex_actors.bridges.otel._export_process``).
"""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from tests.contracts import effect

from onex_actors.bridges.otel import OtelTracer, open_tracer
from onex_actors.bridges.otel._shipping import MAX_QUEUED, ExportProcessError, SpanShipper
from onex_actors.core import HostedNode, cmd_topic, evt_topic, new_command
from onex_actors.runtime import Record

NODE = HostedNode(
    contract=effect("first"),
    cmd_topic=cmd_topic("first"),
    evt_topic=evt_topic("first"),
    dlq_topic="onex.app.local.global.dlq.node.first.v1",
)


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1 keeping every span it is sent."""

    def __init__(self) -> None:
        receiver = self
        self.spans: list[ProtoSpan] = []
        self.resources: list[dict[str, str]] = []
        self.headers: list[str | None] = []
        self.got = threading.Condition()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest.FromString(body)
                with receiver.got:
                    receiver.headers.append(self.headers.get("x-api-key"))
                    for resource_spans in request.resource_spans:
                        receiver.resources.append(
                            {
                                a.key: a.value.string_value
                                for a in resource_spans.resource.attributes
                            }
                        )
                        for scope_spans in resource_spans.scope_spans:
                            receiver.spans.extend(scope_spans.spans)
                    receiver.got.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout_s: float = 60) -> list[ProtoSpan]:
        """Block until ``count`` spans arrived (or fail after ``timeout_s``)."""
        with self.got:
            assert self.got.wait_for(lambda: len(self.spans) >= count, timeout_s), (
                f"{len(self.spans)} of {count} spans arrived"
            )
            return list(self.spans)


@contextmanager
def receiver() -> Iterator[Receiver]:
    serving = Receiver()
    try:
        yield serving
    finally:
        serving.server.shutdown()
        serving.server.server_close()


def handle(traced: OtelTracer, count: int) -> None:
    """Handle ``count`` commands of sampled flows as a node does: 3 spans each."""
    for offset in range(count):
        command = new_command("first", {"n": offset})
        record = Record(NODE.cmd_topic, 0, offset, None, b"")
        envelope, span = traced.consume(NODE, command, record)
        assert span is not None
        with traced.handling(NODE, [span]):
            pass
        traced.produce(envelope, NODE.evt_topic)
        span.end()


def test_the_export_process_sends_every_span_to_the_otlp_endpoint_by_a_clean_stop() -> None:
    with receiver() as otlp:
        with open_tracer(
            endpoint=otlp.endpoint,
            sampler_ratio=1.0,
            resource={"service.name": "runtime-t", "host.name": "here"},
            consumer_group="group-t",
            headers={"x-api-key": "k-1"},
        ) as traced:
            traced.wait_loaded()
            handle(traced, 300)
        # the stop returned only once the export process had exported all and ended
        spans = otlp.wait_for(900, timeout_s=0)
    assert len(spans) == 900
    names = sorted({s.name for s in spans})
    assert names == [
        f"create {evt_topic('first')}",
        "handle first",
        f"process {cmd_topic('first')}",
    ]
    by_id = {s.span_id: s for s in spans}
    for span in spans:
        if span.name != f"process {cmd_topic('first')}":
            parent = by_id[span.parent_span_id]  # handled and answered inside its process span
            assert parent.name == f"process {cmd_topic('first')}"
            assert parent.trace_id == span.trace_id
            assert span.start_time_unix_nano >= parent.start_time_unix_nano
    assert {r["service.name"] for r in otlp.resources} == {"runtime-t"}
    assert {r["host.name"] for r in otlp.resources} == {"here"}
    assert set(otlp.headers) == {"k-1"}


EXPORT_ONLY = """
import sys
from onex_actors.bridges.otel import OtelTracer, open_tracer
from tests.runtime.test_span_export import handle
with open_tracer(endpoint=sys.argv[1], sampler_ratio=1.0, resource={"service.name": "r"},
                 consumer_group="g") as traced:
    handle(traced, 50)
    traced.shipper.flush()  # written to the export process: now die without a stop
    print("written", flush=True)
    sys.stdin.readline()
"""


def test_spans_written_before_the_host_is_killed_are_still_exported() -> None:
    with receiver() as otlp:
        with subprocess.Popen(
            [sys.executable, "-c", EXPORT_ONLY, otlp.endpoint],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
            start_new_session=True,
        ) as host:
            assert host.stdout is not None
            assert host.stdout.readline().strip() == "written"
            os.kill(host.pid, signal.SIGKILL)
            host.wait()
        # its stdin ended with the host: the export process exports what it read, then ends
        assert len(otlp.wait_for(150, timeout_s=8)) == 150


def test_a_full_queue_drops_spans_and_counts_them_never_blocking_the_host(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    sent: list[int] = []

    def stuck(batch: list[object]) -> None:  # an endpoint that does not answer
        release.wait(30)
        sent.append(len(batch))

    shipper = SpanShipper(stuck, interval_s=0.001)
    span = ("s", 0, 1, 1, None, False, None, 0, 0, {}, [], [], 0, None)
    for _ in range(MAX_QUEUED + 10 + 2_048):  # the first batch may already be taken
        shipper.ended(span)
    assert shipper.dropped >= 10
    release.set()
    shipper.stop()
    assert sum(sent) + shipper.dropped == MAX_QUEUED + 10 + 2_048
    assert f"spans dropped in all: {shipper.dropped} " in caplog.text  # said at the stop


def test_an_export_process_that_cannot_start_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "executable", shutil.which("false"))  # exits 1 at once
    with (
        pytest.raises(ExportProcessError, match=r"did not start: exit 1.*tracing.enabled: false"),
        open_tracer(
            endpoint="http://127.0.0.1:9/v1/traces",
            sampler_ratio=1.0,
            resource={"service.name": "r"},
            consumer_group="g",
        ) as traced,
    ):
        traced.wait_loaded()
