"""payload_schema, result_schema: bad input refused before the handler, bad output never passed."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from tests.contracts import RUNTIME_ID, effect, registry
from tests.handlers import BatchingHandler, ScriptedHandler

from onex_actors.core import ContractError, EnvelopeStatus
from onex_actors.registry import load_tree
from onex_actors.testing import open_test_host

ORDER = {
    "type": "object",
    "properties": {
        "sku": {"type": "string", "minLength": 1},
        "lines": {"type": "array", "items": {"type": "integer", "minimum": 1}},
    },
    "required": ["sku"],
}


async def test_a_payload_that_breaks_the_schema_is_refused_before_the_handler_runs() -> None:
    handler = ScriptedHandler()
    contracts = registry(effect("orders", payload_schema=ORDER, concurrency=1))
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, handlers={"orders": handler}
    ) as host:
        ok = await host.request("orders", {"sku": "A-1", "lines": [1, 2]})
        bad = await host.request("orders", {"sku": "A-2", "lines": [1, 0]})
        missing = await host.request("orders", {"lines": [3]})
        await host.collector.wait_until(lambda: len(host.dead_letters("orders")) == 2)
        letters = host.dead_letters("orders")
    assert ok.status is EnvelopeStatus.OK
    assert [call.payload["sku"] for call in handler.calls] == ["A-1"]  # the others never ran
    assert bad.error is not None
    assert (bad.error.type, bad.error.retryable, bad.error.attempts) == (
        "invalid_payload",
        False,
        0,
    )
    assert bad.error.message == (
        "node 'orders': the payload does not satisfy payload_schema at /lines/1: 0 is less "
        "than the minimum of 1 (rule 'minimum')"
    )
    assert missing.error is not None
    assert missing.error.message.endswith("at /: \"sku\" is a required property (rule 'required')")
    assert [letter.error.type for letter in letters if letter.error] == ["invalid_payload"] * 2


async def test_a_batch_handler_gets_only_the_payloads_that_satisfy_the_schema() -> None:
    handler = BatchingHandler()
    handler.gate = trio.Event()  # hold the first batch so the rest queue up
    contracts = registry(effect("orders", payload_schema=ORDER, concurrency=1))
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, handlers={"orders": handler}
    ) as host:
        sent = [
            await host.send("orders", payload)
            for payload in ({"sku": "x"}, {"sku": ""}, {"sku": "y"}, {"nope": 1}, {"sku": "z"})
        ]
        handler.gate.set()
        results = [await host.result(command) for command in sent]
    handled = [envelope.payload.get("sku") for batch in handler.batches for envelope in batch]
    assert handled == ["x", "y", "z"]
    assert [r.status for r in results] == [
        EnvelopeStatus.OK,
        EnvelopeStatus.ERROR,
        EnvelopeStatus.OK,
        EnvelopeStatus.ERROR,
        EnvelopeStatus.OK,
    ]


async def test_a_result_that_breaks_the_result_schema_is_an_error_never_a_silent_pass() -> None:
    echo = effect("echo-checked", result_schema={"type": "object", "required": ["ok"]})
    async with open_test_host(RUNTIME_ID, contracts=registry(echo)) as host:
        good = await host.request("echo-checked", {"ok": True})
        bad = await host.request("echo-checked", {"nope": True})
        await host.collector.wait_until(lambda: host.dead_letters("echo-checked"))
    assert good.status is EnvelopeStatus.OK
    assert bad.error is not None
    assert (bad.error.type, bad.error.retryable) == ("invalid_result", False)
    assert 'does not satisfy result_schema at /: "ok" is a required property' in bad.error.message


def _tree(root: Path, node_yaml: str, files: dict[str, str] | None = None) -> Path:
    (root / "nodes").mkdir(parents=True)
    (root / "nodes" / "orders.yaml").write_text(node_yaml)
    for name, text in (files or {}).items():
        (root / "nodes" / name).write_text(text)
    return root


NODE = "kind: effect\nnode_id: orders\nversion: '0.1.0'\neffect_type: local\n"


def test_a_schema_may_be_a_file_beside_the_contract(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        NODE + "payload_schema: orders.payload.json\n",
        {"orders.payload.json": '{"type": "object", "required": ["sku"]}'},
    )
    node = load_tree(root).nodes["orders"]
    assert node.payload_schema == {"type": "object", "required": ["sku"]}


def test_a_missing_file_or_a_schema_that_is_no_schema_is_a_contract_error(tmp_path: Path) -> None:
    missing = _tree(tmp_path / "a", NODE + "payload_schema: nowhere.json\n")
    with pytest.raises(ContractError) as refused:
        load_tree(missing)
    (problem,) = refused.value.problems
    assert problem.startswith(f"{missing / 'nodes' / 'orders.yaml'}: key 'payload_schema': ")
    assert "cannot read schema file" in problem
    broken = _tree(tmp_path / "b", NODE + "result_schema: {type: nonsense}\n")
    with pytest.raises(ContractError) as refused:
        load_tree(broken)
    (problem,) = refused.value.problems
    assert "key 'result_schema'" in problem
    assert "not a valid JSON Schema (2020-12)" in problem
