"""Handler failures, retries, timeouts and dead letters (SPEC §6, "Failures")."""

from __future__ import annotations

import datetime
import json

import pytest
import trio
from tests.contracts import RUNTIME_ID, effect, registry
from tests.handlers import FailingHandler, HangingHandler

from onex_actors.core import (
    EnvelopeStatus,
    EnvelopeType,
    OnexEnvelope,
    cmd_topic,
    dlq_topic,
    encode_envelope,
    new_command,
)
from onex_actors.runtime import Bus
from onex_actors.testing import open_test_host

RETRY = {
    "max_attempts": 4,
    "backoff_initial_s": 1.0,
    "backoff_max_s": 10.0,
    "backoff_multiplier": 2.0,
}


async def test_retryable_errors_are_retried_with_backoff(autojump_clock: trio.abc.Clock) -> None:
    handler = FailingHandler(failures=2)
    async with open_test_host(
        RUNTIME_ID, contracts=registry(effect("flaky", retry=RETRY)), handlers={"flaky": handler}
    ) as host:
        result = await host.request("flaky", {"x": 1})
    assert result.status is EnvelopeStatus.OK
    assert len(handler.calls) == 3
    gaps = [b - a for a, b in zip(handler.call_times, handler.call_times[1:], strict=False)]
    assert gaps == pytest.approx([1.0, 2.0])
    assert host.dead_letters("flaky") == []


async def test_exhausted_retries_emit_one_error_event_and_one_dead_letter(
    autojump_clock: trio.abc.Clock,
) -> None:
    handler = FailingHandler(failures=100)
    async with open_test_host(
        RUNTIME_ID, contracts=registry(effect("flaky", retry=RETRY)), handlers={"flaky": handler}
    ) as host:
        command = await host.send("flaky", {"x": 1})
        result = await host.result(command)
        await host.collector.wait_until(lambda: host.dead_letters("flaky"))
    assert len(handler.calls) == 4
    assert result.status is EnvelopeStatus.ERROR
    assert result.error is not None
    assert (result.error.type, result.error.retryable, result.error.attempts) == (
        "scripted",
        True,
        4,
    )
    (dead,) = host.dead_letters("flaky")
    assert dead.error == result.error
    assert dead.causation_id == command.envelope_id
    assert OnexEnvelope.model_validate(dead.payload["envelope"]) == command
    assert dead.payload["source"]["topic"] == cmd_topic("flaky")  # type: ignore[index,call-overload]
    assert host.results_of(command) == [result]


async def test_non_retryable_error_is_not_retried(bus: Bus) -> None:
    handler = FailingHandler(failures=1, retryable=False)
    async with open_test_host(
        bus=bus,
        runtime_id=RUNTIME_ID,
        contracts=registry(effect("flaky", retry=RETRY)),
        handlers={"flaky": handler},
    ) as host:
        result = await host.request("flaky", {})
    assert len(handler.calls) == 1
    assert result.error is not None
    assert result.error.attempts == 1


async def test_one_failure_in_n_gives_one_error_and_n_minus_one_ok(bus: Bus) -> None:
    class FailsOnce(FailingHandler):
        async def behave(self, envelope: OnexEnvelope) -> dict[str, object]:  # type: ignore[override]
            if envelope.payload.get("i") == 7:
                raise_error = FailingHandler(0, retryable=False)
                raise_error.failures = 1
                return await raise_error.execute(envelope)  # type: ignore[return-value]
            return dict(envelope.payload)

    async with open_test_host(
        bus=bus,
        runtime_id=RUNTIME_ID,
        contracts=registry(effect("mostly")),
        handlers={"mostly": FailsOnce(0)},
    ) as host:
        commands = [await host.send("mostly", {"i": i}) for i in range(20)]
        results = [await host.result(c) for c in commands]
        await host.collector.wait_until(lambda: host.dead_letters("mostly"))
    statuses = [r.status for r in results]
    assert statuses.count(EnvelopeStatus.ERROR) == 1
    assert statuses.count(EnvelopeStatus.OK) == 19
    assert len(host.dead_letters("mostly")) == 1


async def test_timeout_is_a_retryable_error(autojump_clock: trio.abc.Clock) -> None:
    handler = HangingHandler()
    contracts = registry(
        effect("slow", timeout_s=5, retry={"max_attempts": 2, "backoff_initial_s": 1})
    )
    async with open_test_host(RUNTIME_ID, contracts=contracts, handlers={"slow": handler}) as host:
        started = trio.current_time()
        result = await host.request("slow", {})
        elapsed = trio.current_time() - started
    assert result.error is not None
    assert result.error.type == "timeout"
    assert "timeout_s=5" in result.error.message
    assert result.error.attempts == 2
    assert elapsed == pytest.approx(11.0)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json at all", "not_json"),
        (b'{"type": "cmd"}', "schema"),
        (json.dumps({"x": "y" * 3000}).encode(), "oversize"),
    ],
)
async def test_malformed_records_go_to_the_runtime_dead_letters(
    value: bytes, reason: str, bus: Bus
) -> None:
    from onex_actors.app import HostConfig

    config = HostConfig(max_envelope_bytes=2048)
    async with open_test_host(
        bus=bus, runtime_id=RUNTIME_ID, contracts=registry(effect("echo-node")), config=config
    ) as host:
        await host.send_raw(cmd_topic("echo-node"), value)
        await host.collector.wait_until(lambda: host.dead_letters(RUNTIME_ID))
        still_alive = await host.request("echo-node", {"after": reason})
    (dead,) = host.dead_letters(RUNTIME_ID)
    assert dead.type is EnvelopeType.DLQ
    assert dead.error is not None
    assert dead.error.type == reason
    source = dead.payload["source"]
    assert isinstance(source, dict)
    assert source["topic"] == cmd_topic("echo-node")
    where = (
        f"topic {cmd_topic('echo-node')} partition {source['partition']} offset {source['offset']}"
    )
    assert where in dead.error.message
    assert dead.payload["raw_size"] == len(value)
    assert still_alive.status is EnvelopeStatus.OK


async def test_unknown_node_goes_to_the_runtime_dead_letters(
    bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    contracts = registry(effect("echo-node"), consume="matching")
    async with open_test_host(bus=bus, runtime_id=RUNTIME_ID, contracts=contracts) as host:
        stray = new_command("nobody-home", {"x": 1})
        await host.send_raw(cmd_topic("nobody-home"), encode_envelope(stray))
        await host.collector.wait_until(lambda: host.dead_letters(RUNTIME_ID))
    (dead,) = host.dead_letters(RUNTIME_ID)
    assert dead.error is not None
    assert dead.error.type == "unknown_node"
    assert "'nobody-home'" in dead.error.message
    assert dead.causation_id == stray.envelope_id
    # the process log's record carries the event's fields, for --log-format json
    (logged,) = [r for r in caplog.records if getattr(r, "onex", {}).get("event") == "dead_letter"]
    assert logged.onex["correlation_id"] == str(stray.correlation_id)  # type: ignore[attr-defined]
    assert logged.onex["error_type"] == "unknown_node"  # type: ignore[attr-defined]


async def test_tenant_outside_scope_is_answered_and_dead_lettered(bus: Bus) -> None:
    contracts = registry(effect("acme-node", tenant_scope=["acme"]))
    async with open_test_host(bus=bus, runtime_id=RUNTIME_ID, contracts=contracts) as host:
        result = await host.request("acme-node", {}, tenant_id="other")
        ok = await host.request("acme-node", {}, tenant_id="acme")
        await host.collector.wait_until(lambda: host.dead_letters("acme-node"))
    assert result.error is not None
    assert result.error.type == "tenant_out_of_scope"
    assert ok.status is EnvelopeStatus.OK
    assert host.collector.by_topic[dlq_topic("acme-node")][0].error == result.error


async def test_non_json_result_is_a_clear_error(bus: Bus) -> None:
    class BadResult(FailingHandler):
        async def behave(self, envelope: OnexEnvelope) -> dict[str, object]:  # type: ignore[override]
            return {"order": {"when": [1, datetime.date(2026, 1, 1)]}}

    async with open_test_host(
        bus=bus,
        runtime_id=RUNTIME_ID,
        contracts=registry(effect("bad")),
        handlers={"bad": BadResult(0)},
    ) as host:
        result = await host.request("bad", {})
    assert result.error is not None
    assert result.error.type == "invalid_result"
    assert "field 'payload.order.when[1]' holds a datetime.date" in result.error.message
    assert "isoformat()" in result.error.message
