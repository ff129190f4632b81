"""Building contract trees in code for tests."""

from __future__ import annotations

from typing import Any

from onex_actors.core import EffectContract, RuntimeHostContract, parse_contract
from onex_actors.registry import StaticRegistry

RUNTIME_ID = "runtime-test"


def effect(node_id: str, **extra: Any) -> EffectContract:
    document: dict[str, Any] = {
        "kind": "effect",
        "node_id": node_id,
        "version": "0.1.0",
        "effect_type": "local",
    }
    contract = parse_contract({**document, **extra}, source=f"<test:{node_id}>")
    assert isinstance(contract, EffectContract)
    return contract


def runtime(
    *node_ids: str,
    families: tuple[str, ...] = ("local", "http", "db"),
    consume: str = "hosted",
    runtime_id: str = RUNTIME_ID,
) -> RuntimeHostContract:
    contract = parse_contract(
        {
            "kind": "runtime_host",
            "node_id": runtime_id,
            "version": "0.1.0",
            "subscriptions": {
                "cmd_topics": ["onex.app.local.global.cmd.node.#"],
                "consume": consume,
            },
            "handlers": {"families": list(families)},
            "host_selector": {"node_ids": list(node_ids)},
        },
        source="<test:runtime>",
    )
    assert isinstance(contract, RuntimeHostContract)
    return contract


def registry(*nodes: EffectContract, consume: str = "hosted") -> StaticRegistry:
    return StaticRegistry([runtime(*(n.node_id for n in nodes), consume=consume)], nodes)
