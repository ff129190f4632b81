"""``/state/<node>/<key>`` on the host's listener (127.0.0.1): off by default, tokens, tenants."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from onex_actors.app import HostConfig, load_config
from onex_actors.core import ConfigError
from onex_actors.registry import FileRegistry
from onex_actors.testing import HostHarness, open_test_host

CONTRACTS = FileRegistry(Path(__file__).resolve().parents[2] / "contracts")
OURS, THEIRS = "token-of-the-global-tenant", "token-of-tenant-acme-only"


def config(state: dict[str, object]) -> HostConfig:
    return HostConfig.model_validate({"http": {"listen": "127.0.0.1:0", "state": state}})


async def get(host: HostHarness, path: str, token: str | None = None) -> httpx2.Response:
    (base,) = host.host.listening
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx2.AsyncClient(base_url=base) as client:
        return await client.get(path, headers=headers)


async def test_state_is_off_unless_enabled() -> None:
    async with open_test_host("runtime-dev-state", contracts=CONTRACTS, config=config({})) as host:
        await host.request("order-totals", {"customer": "c1", "amount": 3})
        response = await get(host, "/state/order-totals/c1")
    assert response.status_code == 404
    assert "http.state.enabled" in response.json()["error"]


async def test_a_token_reads_only_its_tenants() -> None:
    tokens = [
        {"token": OURS, "tenants": ["global"]},
        {"token": THEIRS, "tenants": ["acme"]},
    ]
    async with open_test_host(
        "runtime-dev-state",
        contracts=CONTRACTS,
        config=config({"enabled": True, "tokens": tokens}),
    ) as host:
        await host.request("order-totals", {"customer": "c1", "amount": 3})
        await host.request("order-totals", {"customer": "c1", "amount": 4}, tenant_id="acme")
        without = await get(host, "/state/order-totals/c1")
        wrong = await get(host, "/state/order-totals/c1", "not-a-token-we-gave-anyone")
        other_tenant = await get(host, "/state/order-totals/c1", THEIRS)
        ours = await get(host, "/state/order-totals/c1", OURS)
        theirs = await get(host, "/state/order-totals/c1?tenant=acme", THEIRS)
        missing = await get(host, "/state/order-totals/nobody", OURS)
        not_a_reducer = await get(host, "/state/price-quote/c1", OURS)
    assert without.status_code == 401
    assert wrong.status_code == 401
    assert other_tenant.status_code == 403
    assert "may not read tenant 'global'" in other_tenant.json()["error"]
    assert ours.status_code == 200
    assert ours.json()["state"] == {"orders": 1, "total": 3}
    assert ours.json()["tenant_id"] == "global"
    assert theirs.status_code == 200
    assert theirs.json()["state"] == {"orders": 1, "total": 4}
    assert missing.status_code == 404
    assert missing.json()["error"] == "no state for this key"
    assert not_a_reducer.status_code == 404
    assert "not a reducer or orchestrator this host runs" in not_a_reducer.json()["error"]


def test_state_off_loopback_needs_tokens() -> None:
    tokenless = {"ONEX_HTTP__LISTEN": "0.0.0.0:9100", "ONEX_HTTP__STATE__ENABLED": "true"}
    with pytest.raises(ConfigError, match=r"set http\.state\.tokens"):
        load_config(environ=tokenless)
    tokens = json.dumps([{"token": OURS, "tenants": ["*"]}])
    scoped = load_config(environ={**tokenless, "ONEX_HTTP__STATE__TOKENS": tokens})
    assert scoped.http.state.tokens[0].tenants == ("*",)
    assert load_config(
        environ={"ONEX_HTTP__LISTEN": "127.0.0.1:9100", "ONEX_HTTP__STATE__ENABLED": "true"}
    ).http.state.enabled
