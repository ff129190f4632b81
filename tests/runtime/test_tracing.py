"""OpenTelemetry spans of the envelopes a host handles, read back from the SDK's memory.

The spans are the SDK's own, exported through an in-memory exporter in place of OTLP
(the real receiver is tests/integration/test_traces_in_jaeger.py).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import trio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import JsonValue
from tests.contracts import RUNTIME_ID, effect, registry
from tests.handlers import FailingHandler, ScriptedHandler
from tests.runtime.test_pure_nodes import tree

from onex_actors.bridges.otel import OtelTracer, open_tracer
from onex_actors.core import (
    EnvelopeStatus,
    OnexEnvelope,
    cmd_topic,
    encode_envelope,
    evt_topic,
    new_command,
)
from onex_actors.runtime import OutboundRecord
from onex_actors.testing import open_test_host

CHAIN = registry(
    effect("first", then={"node_id": "second", "payload": {"n": "$.result.n"}}),
    effect("second"),
)


@contextmanager
def tracer(ratio: float = 1.0) -> Iterator[tuple[OtelTracer, list[ReadableSpan]]]:
    """A tracer into memory; the list holds every span once the block has ended."""
    exporter = InMemorySpanExporter()
    spans: list[ReadableSpan] = []
    with open_tracer(
        endpoint="unused",
        sampler_ratio=ratio,
        resource={"service.name": RUNTIME_ID},
        consumer_group="group-t",
        exporter=exporter,
    ) as opened:
        yield opened, spans
    spans += exporter.get_finished_spans()


def named(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    (span,) = [s for s in spans if s.name == name]
    return span


def context_of(traceparent: str) -> tuple[str, int, bool]:
    """A W3C ``traceparent``'s trace id, parent span id and sampled flag."""
    version, trace, span, flags = traceparent.split("-")
    assert version == "00"
    return trace, int(span, 16), bool(int(flags, 16) & 1)


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_a_flow_across_two_nodes_is_one_trace_in_causal_order() -> None:
    with tracer() as (traced, spans):
        async with open_test_host(RUNTIME_ID, contracts=CHAIN, tracer=traced) as host:
            command = await host.send("first", {"n": 7})
            first, second = await host.collector.results(command.correlation_id, count=2)
    # one trace, whose id is the flow's correlation id
    assert {s.context.trace_id for s in spans} == {command.correlation_id.int}
    got_first = named(spans, f"process {cmd_topic('first')}")
    handle_first = named(spans, "handle first")
    sent_on = named(spans, f"create {cmd_topic('second')}")
    got_second = named(spans, f"process {cmd_topic('second')}")
    handle_second = named(spans, "handle second")
    answer_first = named(spans, f"create {evt_topic('first')}")
    answer_second = named(spans, f"create {evt_topic('second')}")
    assert got_first.parent is None  # the command came from outside: the flow starts here
    assert parent_of(handle_first) == got_first.context.span_id
    assert parent_of(sent_on) == got_first.context.span_id  # the then: command, created
    assert parent_of(got_second) == sent_on.context.span_id  # ... and handled
    assert parent_of(handle_second) == got_second.context.span_id
    assert parent_of(answer_first) == got_first.context.span_id
    assert parent_of(answer_second) == got_second.context.span_id
    assert len(spans) == 7
    assert (got_first.kind, handle_first.kind) == (SpanKind.CONSUMER, SpanKind.INTERNAL)
    assert (sent_on.kind, dict(sent_on.attributes or {})["messaging.operation.type"]) == (
        SpanKind.PRODUCER,
        "create",
    )
    attributes = dict(got_first.attributes or {})
    assert attributes["messaging.system"] == "kafka"
    assert attributes["messaging.destination.name"] == cmd_topic("first")
    assert attributes["messaging.consumer.group.name"] == "group-t"
    assert attributes["messaging.message.id"] == str(command.envelope_id)
    assert attributes["messaging.message.conversation_id"] == str(command.correlation_id)
    assert isinstance(attributes["messaging.kafka.offset"], int)
    # each result carries the context of its own producer span
    trace = f"{got_first.context.trace_id:032x}"
    assert context_of(first.headers["traceparent"]) == (trace, answer_first.context.span_id, True)
    assert context_of(second.headers["traceparent"]) == (
        trace,
        answer_second.context.span_id,
        True,
    )


async def test_a_flow_not_sampled_where_it_started_is_not_sampled_later() -> None:
    with tracer(ratio=0.0) as (traced, spans):
        async with open_test_host(RUNTIME_ID, contracts=CHAIN, tracer=traced) as host:
            command = await host.send("first", {"n": 1})
            _, second = await host.collector.results(command.correlation_id, count=2)
    assert spans == []
    # each hop reached the same decision from the flow's correlation id: no header needed
    assert "traceparent" not in second.headers


async def test_an_incoming_trace_is_continued_and_its_decision_kept() -> None:
    upstream = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with tracer(ratio=0.0) as (traced, spans):  # ratio 0: only a sampled parent samples
        async with open_test_host(RUNTIME_ID, contracts=CHAIN, tracer=traced) as host:
            command = await host.send("first", {"n": 1}, headers={"traceparent": upstream})
            await host.collector.results(command.correlation_id, count=2)
    created = named(spans, f"create {cmd_topic('first')}")  # the embedded host sent it
    got_first = named(spans, f"process {cmd_topic('first')}")
    assert f"{got_first.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert parent_of(created) == 0xB7AD6B7169203331
    assert parent_of(got_first) == created.context.span_id
    assert len(spans) == 8  # and the 7 of the flow


async def test_a_context_in_the_kafka_headers_alone_is_continued() -> None:
    upstream = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    command = new_command("second", {"n": 2})
    record = OutboundRecord(
        cmd_topic("second"),
        encode_envelope(command),
        b"k",
        (("traceparent", upstream.encode()),),
    )
    with tracer(ratio=0.0) as (traced, spans):
        async with open_test_host(RUNTIME_ID, contracts=CHAIN, tracer=traced) as host:
            await host.bus.publish([record])
            (answer,) = await host.collector.results(command.correlation_id)
    got = named(spans, f"process {cmd_topic('second')}")
    answered = named(spans, f"create {evt_topic('second')}")
    assert f"{got.context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert parent_of(got) == 0x00F067AA0BA902B7
    assert context_of(answer.headers["traceparent"])[1] == answered.context.span_id
    assert parent_of(answered) == got.context.span_id


async def test_retries_and_a_dead_letter_are_events_and_statuses_of_the_spans(
    autojump_clock: trio.abc.Clock,
) -> None:
    retry = {"max_attempts": 2, "backoff_initial_s": 1.0, "backoff_max_s": 1.0}
    nodes = registry(effect("flaky", retry=retry))
    with tracer() as (traced, spans):
        async with open_test_host(
            RUNTIME_ID, contracts=nodes, handlers={"flaky": FailingHandler(5)}, tracer=traced
        ) as host:
            failed = await host.request("flaky", {"x": 1})
    assert failed.status is EnvelopeStatus.ERROR
    got = named(spans, f"process {cmd_topic('flaky')}")
    events = [(e.name, dict(e.attributes or {})) for e in got.events]
    assert events == [
        ("onex.retry", {"attempt": 1, "error.type": "scripted"}),
        ("onex.dead_letter", {"error.type": "scripted"}),
    ]
    assert got.status.status_code is StatusCode.ERROR
    calls = [s for s in spans if s.name == "handle flaky"]
    assert len(calls) == 2  # one span per attempt, each failed with its exception
    assert all(c.status.status_code is StatusCode.ERROR for c in calls)
    assert all(parent_of(c) == got.context.span_id for c in calls)


class CrashesOnce(ScriptedHandler):
    """Crashes its actor on the first call (a bug, not a HandlerError), then echoes."""

    async def behave(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        if len(self.calls) == 1:
            raise RuntimeError("a bug on the first call")
        return envelope.payload


async def test_an_actor_restart_is_an_event_of_the_envelope_it_crashed_on(
    autojump_clock: trio.abc.Clock,
) -> None:
    restart = {"max_restarts": 3, "window_s": 60, "backoff_initial_s": 1, "backoff_max_s": 1}
    nodes = registry(effect("fragile", restart=restart))
    with tracer() as (traced, spans):
        async with open_test_host(
            RUNTIME_ID, contracts=nodes, handlers={"fragile": CrashesOnce()}, tracer=traced
        ) as host:
            answer = await host.request("fragile", {"x": 1})
    assert answer.payload == {"x": 1}  # answered by the restarted actor
    got = named(spans, f"process {cmd_topic('fragile')}")  # one span across the restart
    assert [(e.name, dict(e.attributes or {})) for e in got.events] == [
        ("onex.actor_restarted", {"crashes": 1})
    ]
    calls = [s for s in spans if s.name == "handle fragile"]
    assert [c.status.status_code for c in calls] == [StatusCode.ERROR, StatusCode.UNSET]


async def test_a_workflows_steps_are_in_the_trace_of_its_start_command() -> None:
    flow: dict[str, Any] = {
        "kind": "orchestrator",
        "node_id": "pair-flow",
        "version": "0.1.0",
        "workflow": {
            "steps": [
                {"name": "a", "node_id": "echo-node", "payload": {"n": "input.n"}},
                {"name": "b", "node_id": "echo-node", "payload": {"n": "input.n + 1"}},
            ],
            "output": {"a": "steps.a.output.n", "b": "steps.b.output.n"},
        },
    }
    with tracer() as (traced, spans):
        async with open_test_host("runtime-dev-state", contracts=tree(flow), tracer=traced) as host:
            answer = await host.request("pair-flow", {"n": 3})
    assert answer.payload == {"a": 3, "b": 4}
    start = [s for s in spans if s.name == f"process {cmd_topic('pair-flow')}" and s.parent is None]
    assert len(start) == 1  # only the start command begins a trace
    assert {s.context.trace_id for s in spans} == {start[0].context.trace_id}
    by_id = {s.context.span_id: s for s in spans}

    def descends(span: ReadableSpan) -> bool:
        """Whether the start's span is among ``span``'s ancestors."""
        while (parent := parent_of(span)) is not None:
            if parent == start[0].context.span_id:
                return True
            span = by_id[parent]
        return False

    steps = [s for s in spans if s.name == f"process {cmd_topic('echo-node')}"]
    assert len(steps) == 2  # a and b
    assert all(descends(s) for s in steps)
    answered = [s for s in spans if s.kind is SpanKind.CONSUMER and s is not start[0]]
    assert all(descends(s) for s in answered)  # results back to the instance too


def test_a_host_without_tracing_loads_no_opentelemetry_module() -> None:
    script = (
        "import sys, trio\n"
        "from onex_actors.testing import open_test_host\n"
        "async def main():\n"
        "    async with open_test_host('runtime-dev') as host:\n"
        "        assert (await host.request('echo-node', {'a': 1})).payload == {'a': 1}\n"
        "trio.run(main)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
