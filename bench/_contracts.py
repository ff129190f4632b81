"""Contracts for benchmarks: one local node hosted by one runtime on its own topic."""

from __future__ import annotations

from typing import Any

from onex_actors.core import EffectContract, RuntimeHostContract, cmd_topic, parse_contract
from onex_actors.registry import StaticRegistry


def one_node(node: str, runtime: str, *, family: str = "local", **settings: Any) -> StaticRegistry:
    """``node`` (of ``family``, plus ``settings``: its section among them) on ``runtime``."""
    effect = parse_contract(
        {"kind": "effect", "node_id": node, "version": "0.1.0", "effect_type": family, **settings},
        source="bench",
    )
    host = parse_contract(
        {
            "kind": "runtime_host",
            "node_id": runtime,
            "version": "0.1.0",
            "subscriptions": {"cmd_topics": [cmd_topic(node)]},
            "handlers": {"families": [family]},
            "host_selector": {"node_ids": [node]},
        },
        source="bench",
    )
    assert isinstance(effect, EffectContract)
    assert isinstance(host, RuntimeHostContract)
    return StaticRegistry([host], [effect])
