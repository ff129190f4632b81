"""The HTTP handler against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.contracts import RUNTIME_ID, effect, registry, runtime
from tests.http_server import RecordingServer, recording_server
from tests.kafka_support import KAFKA_FREE

from onex_actors.app import HostConfig, HttpSettings
from onex_actors.core import EnvelopeStatus
from onex_actors.registry import StaticRegistry
from onex_actors.testing import open_test_host

pytestmark = KAFKA_FREE

FAST_RETRY = {"max_attempts": 3, "backoff_initial_s": 0.01, "backoff_max_s": 0.02}


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with recording_server() as running:
        yield running


def allowing(server: RecordingServer) -> HostConfig:
    return HostConfig(http=HttpSettings(allowlist=(f"127.0.0.1:{server.port}",)))


def proxy(server: RecordingServer, **http: object) -> object:
    section = {
        "url_template": f"{server.base_url}/{{path}}",
        "method": "GET",
        "body": "none",
        **http,
    }
    return registry(effect("proxy", effect_type="http", local=None, http=section, retry=FAST_RETRY))


async def test_result_carries_status_and_body(server: RecordingServer) -> None:
    async with open_test_host(RUNTIME_ID, contracts=proxy(server), config=allowing(server)) as host:  # type: ignore[arg-type]
        result = await host.request("proxy", {"path": "users/7"})
        text = await host.request("proxy", {"path": "text"})
    assert result.status is EnvelopeStatus.OK
    assert result.payload["status"] == 200
    assert result.payload["body"] == {"method": "GET", "path": "/users%2F7", "body": None}
    assert text.payload["body"] == "plain words"
    assert [r.path for r in server.seen] == ["/users%2F7", "/text"]


async def test_post_sends_the_payload_as_json(server: RecordingServer) -> None:
    contracts = proxy(server, method="POST", body="payload", headers={"x-api": "v1"})
    async with open_test_host(RUNTIME_ID, contracts=contracts, config=allowing(server)) as host:  # type: ignore[arg-type]
        result = await host.request("proxy", {"path": "orders", "qty": 2})
    assert result.payload["status"] == 200
    (seen,) = server.seen
    assert seen.method == "POST"
    assert seen.body == b'{"path": "orders", "qty": 2}'
    assert seen.headers["x-api"] == "v1"
    assert seen.headers["content-type"] == "application/json"


async def test_server_error_is_retried_then_reported(server: RecordingServer) -> None:
    async with open_test_host(RUNTIME_ID, contracts=proxy(server), config=allowing(server)) as host:  # type: ignore[arg-type]
        command = await host.send("proxy", {"path": "status-503"})
        result = await host.result(command)
        await host.collector.wait_until(lambda: host.dead_letters("proxy"))
    assert len(server.seen) == 3
    assert result.status is EnvelopeStatus.ERROR
    assert result.error is not None
    assert (result.error.type, result.error.retryable, result.error.attempts) == (
        "http_status",
        True,
        3,
    )
    assert "answered 503" in result.error.message
    assert len(host.dead_letters("proxy")) == 1


async def test_a_client_error_is_an_error_result_and_not_retried(server: RecordingServer) -> None:
    async with open_test_host(RUNTIME_ID, contracts=proxy(server), config=allowing(server)) as host:  # type: ignore[arg-type]
        result = await host.request("proxy", {"path": "status-404"})
    assert result.status is EnvelopeStatus.ERROR
    assert result.error is not None
    assert (result.error.type, result.error.retryable) == ("http_status", False)
    assert "answered 404" in result.error.message
    assert "accepted_statuses" in result.error.message
    assert len(server.seen) == 1


async def test_a_client_status_the_contract_accepts_is_a_result(server: RecordingServer) -> None:
    contracts = proxy(server, accepted_statuses=[404])
    async with open_test_host(RUNTIME_ID, contracts=contracts, config=allowing(server)) as host:  # type: ignore[arg-type]
        result = await host.request("proxy", {"path": "status-404"})
    assert result.status is EnvelopeStatus.OK
    assert result.payload["status"] == 404
    assert len(server.seen) == 1


async def test_redirects_are_not_followed(server: RecordingServer) -> None:
    async with open_test_host(RUNTIME_ID, contracts=proxy(server), config=allowing(server)) as host:  # type: ignore[arg-type]
        result = await host.request("proxy", {"path": "redirect"})
    assert result.payload["status"] == 302
    assert result.payload["headers"]["location"] == "/elsewhere"  # type: ignore[index,call-overload]
    assert [r.path for r in server.seen] == ["/redirect"]


@pytest.mark.parametrize("path", ["big", "big-unsized"])
async def test_response_over_the_cap_is_refused(server: RecordingServer, path: str) -> None:
    contracts = proxy(server, max_response_bytes=1000)
    async with open_test_host(RUNTIME_ID, contracts=contracts, config=allowing(server)) as host:  # type: ignore[arg-type]
        result = await host.request("proxy", {"path": path})
    assert result.error is not None
    assert result.error.type == "http_response_too_large"
    assert "max_response_bytes=1000" in result.error.message
    assert len(server.seen) == 1


async def test_host_outside_the_allowlist_is_refused_without_connecting(
    server: RecordingServer,
) -> None:
    config = HostConfig(http=HttpSettings(allowlist=("127.0.0.1:1", "example.invalid:443")))
    async with open_test_host(RUNTIME_ID, contracts=proxy(server), config=config) as host:  # type: ignore[arg-type]
        result = await host.request("proxy", {"path": "anything"})
    assert result.error is not None
    assert result.error.type == "http_host_not_allowed"
    assert result.error.attempts == 1
    assert "not in the HTTP allowlist (127.0.0.1:1, example.invalid:443)" in result.error.message
    assert server.seen == []


async def test_missing_url_parameter_is_a_clear_error(server: RecordingServer) -> None:
    async with open_test_host(RUNTIME_ID, contracts=proxy(server), config=allowing(server)) as host:  # type: ignore[arg-type]
        result = await host.request("proxy", {"not_path": 1})
    assert result.error is not None
    assert result.error.type == "missing_parameter"
    assert "payload has no 'path'" in result.error.message
    assert server.seen == []


async def test_connection_refused_is_retryable() -> None:
    with recording_server() as gone:
        contracts = proxy(gone)
    config = allowing(gone)
    async with open_test_host(RUNTIME_ID, contracts=contracts, config=config) as host:  # type: ignore[arg-type]
        result = await host.request("proxy", {"path": "x"})
    assert result.error is not None
    assert (result.error.type, result.error.attempts) == ("http_connect", 3)


@pytest.mark.parametrize(
    ("template", "payload", "error_type", "expected"),
    [
        ("{base}/{{path}}", {"path": "\u00e9" * 22_000}, "invalid_request", "InvalidURL"),
        ("http://127.0.0.1:{{port}}/x", {"port": "39581/x?"}, "invalid_request", "InvalidURL"),
        ("{base}/a/{{path}}", {"path": ".."}, "invalid_parameter", "path segment"),
        ("{base}/a/{{path}}", {"path": "."}, "invalid_parameter", "path segment"),
    ],
)
async def test_requests_the_payload_makes_invalid_fail_the_command_not_the_node(
    server: RecordingServer,
    template: str,
    payload: dict[str, str],
    error_type: str,
    expected: str,
) -> None:
    """Four such commands in a row stop no node: each is one error event, no crash."""
    contracts = proxy(server, url_template=template.format(base=server.base_url))
    async with open_test_host(RUNTIME_ID, contracts=contracts, config=allowing(server)) as host:  # type: ignore[arg-type]
        results = [await host.request("proxy", payload) for _ in range(4)]
        health = host.health().nodes["proxy"]
    for result in results:
        assert result.error is not None
        assert (result.error.type, result.error.retryable, result.error.attempts) == (
            error_type,
            False,
            1,
        )
        assert expected in result.error.message
    assert (health.restarts, health.healthy) == (0, True)
    assert server.seen == []


async def test_an_invalid_traceparent_is_not_forwarded(server: RecordingServer) -> None:
    valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with open_test_host(RUNTIME_ID, contracts=proxy(server), config=allowing(server)) as host:  # type: ignore[arg-type]
        bad = await host.request(
            "proxy", {"path": "a"}, headers={"traceparent": "00-\u00e9t\u00e9"}
        )
        good = await host.request("proxy", {"path": "b"}, headers={"traceparent": valid})
        health = host.health().nodes["proxy"]
    assert (bad.status, good.status) == (EnvelopeStatus.OK, EnvelopeStatus.OK)
    assert "traceparent" not in server.seen[0].headers
    assert server.seen[1].headers["traceparent"] == valid
    assert health.restarts == 0


async def test_an_llm_server_asking_to_retry_after_a_second_is_waited_for(
    server: RecordingServer,
) -> None:
    endpoints = {"default": {"base_url": f"{server.base_url}/busy-once/v1"}}
    retry = {"max_attempts": 3, "backoff_initial_s": 0.01, "backoff_max_s": 5.0}
    node = effect(
        "ask",
        effect_type="llm",
        local=None,
        retry=retry,
        llm={"model": "stub-model", "messages": {"user": "hello"}},
    )
    contracts = StaticRegistry([runtime("ask", families=("llm",))], [node])
    config = HostConfig.model_validate({"llm": {"endpoints": endpoints}})
    async with open_test_host(RUNTIME_ID, contracts=contracts, config=config) as host:
        result = await host.request("ask", {})
    assert result.status is EnvelopeStatus.OK
    assert result.payload["text"] == "done"
    first, second = server.seen
    assert first.path == second.path == "/busy-once/v1/chat/completions"
    assert second.at - first.at >= 1.0  # Retry-After: 1, though the backoff was 0.01 s
    assert first.headers.get("authorization") is None  # no key configured, none sent
