from __future__ import annotations

from typing import Any

import pytest

from onex_actors.core import (
    ContractError,
    EffectContract,
    EffectFamily,
    HttpEffect,
    RestartStrategy,
    RuntimeHostContract,
    backoff_delay,
    parse_contract,
)

SOURCE = "contracts/nodes/echo-node.yaml"


def echo(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "effect",
        "node_id": "echo-node",
        "version": "0.1.0",
        "effect_type": "local",
        **extra,
    }


def problems_of(document: object) -> tuple[str, ...]:
    with pytest.raises(ContractError) as info:
        parse_contract(document, source=SOURCE)
    assert all(p.startswith(f"{SOURCE}: ") for p in info.value.problems)
    return info.value.problems


def test_minimal_effect_contract_gets_defaults() -> None:
    contract = parse_contract(echo(), source=SOURCE)
    assert isinstance(contract, EffectContract)
    assert contract.effect_type is EffectFamily.LOCAL
    assert contract.local is not None
    assert contract.local.operation == "echo"
    assert contract.contract_id == "echo-node@0.1.0"
    assert (contract.inbox_size, contract.concurrency, contract.timeout_s) == (1024, 64, 30.0)
    assert contract.ordering == "key"
    assert contract.restart.policy is RestartStrategy.PERMANENT
    assert contract.accepts_tenant("anyone")


def test_tenant_scope_list_limits_tenants() -> None:
    contract = parse_contract(echo(tenant_scope=["acme"]), source=SOURCE)
    assert isinstance(contract, EffectContract)
    assert contract.accepts_tenant("acme")
    assert not contract.accepts_tenant("global")


def test_runtime_host_contract() -> None:
    contract = parse_contract(
        {
            "kind": "runtime_host",
            "node_id": "runtime-dev",
            "version": "0.1.0",
            "subscriptions": {"cmd_topics": ["onex.app.local.global.cmd.node.#"]},
            "handlers": {"families": ["local"]},
            "host_selector": {"node_ids": ["echo-node"]},
        },
        source="contracts/runtime/runtime-dev.yaml",
    )
    assert isinstance(contract, RuntimeHostContract)
    assert contract.subscriptions.patterns[0].matches("onex.app.local.global.cmd.node.x.v1")


def test_missing_key_is_named() -> None:
    document = echo()
    del document["version"]
    assert problems_of(document) == (f"{SOURCE}: missing required key 'version'",)


def test_missing_kind_lists_the_kinds() -> None:
    document = echo()
    del document["kind"]
    (problem,) = problems_of(document)
    assert "missing required key 'kind'" in problem
    assert "effect, compute, reducer, orchestrator, runtime_host" in problem


def test_wrong_kind_is_named() -> None:
    (problem,) = problems_of(echo(kind="effekt"))
    assert "key 'kind': 'effekt' is not a contract kind" in problem


def test_unknown_key_is_named() -> None:
    (problem,) = problems_of(echo(retries=3))
    assert "unknown key 'retries'" in problem


def test_nested_key_path_and_expected_value() -> None:
    (problem,) = problems_of(echo(retry={"max_attempts": 0}))
    assert "key 'retry.max_attempts'" in problem
    assert "greater than or equal to 1" in problem
    assert "(got 0)" in problem


def test_every_problem_is_listed() -> None:
    found = problems_of(echo(node_id="Bad Id", inbox_size=0))
    assert len(found) == 2
    assert any("key 'node_id'" in p and "not a valid slug" in p for p in found)
    assert any("key 'inbox_size'" in p for p in found)


def test_family_section_must_match_effect_type() -> None:
    (problem,) = problems_of(echo(effect_type="http"))
    assert "a 'http:' section is required" in problem
    (problem,) = problems_of(echo(db={"sql": "select 1"}))
    assert "the 'db:' section does not belong here" in problem


def test_accepted_http_statuses_are_client_errors_only() -> None:
    assert HttpEffect(url_template="http://x:1/", accepted_statuses=(404, 409)).accepted_statuses
    with pytest.raises(ValueError, match=r"accepted_statuses are 4xx statuses; \[200, 503\]"):
        HttpEffect(url_template="http://x:1/", accepted_statuses=(200, 404, 503))


def test_http_template_is_checked() -> None:
    (problem,) = problems_of(echo(effect_type="http", http={"url_template": "ftp://x/{path}"}))
    assert "must start with http:// or https://" in problem
    (problem,) = problems_of(echo(effect_type="http", http={"url_template": "http://x/{a.b}"}))
    assert "placeholder {a.b}" in problem


def test_not_a_mapping() -> None:
    assert problems_of(None) == (
        f"{SOURCE}: expected a mapping of contract keys, got an empty file",
    )
    assert "got list" in problems_of([1])[0]


def test_backoff_is_exponential_and_capped() -> None:
    delays = [backoff_delay(n, initial_s=0.1, maximum_s=1.0, multiplier=2.0) for n in range(6)]
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.8, 1.0]
    assert backoff_delay(10_000, initial_s=0.1, maximum_s=1.0, multiplier=2.0) == 1.0


def test_backoff_max_below_initial_is_refused() -> None:
    (problem,) = problems_of(echo(retry={"backoff_initial_s": 2, "backoff_max_s": 1}))
    assert "backoff_max_s must be at least backoff_initial_s" in problem


def test_duplicate_host_selector_entries_are_refused() -> None:
    with pytest.raises(ContractError, match="listed more than once: echo-node"):
        parse_contract(
            {
                "kind": "runtime_host",
                "node_id": "runtime-dev",
                "version": "0.1.0",
                "subscriptions": {"cmd_topics": ["onex.#"]},
                "handlers": {"families": ["local"]},
                "host_selector": {"node_ids": ["echo-node", "echo-node"]},
            },
            source="r.yaml",
        )
