"""``onex state``: a reducer key's state, as its changelog holds it on the cluster."""

from __future__ import annotations

import json
from pathlib import Path

from onex_actors.app import kafka_client_config
from onex_actors.bridges.kafka import newest_of_key
from onex_actors.core import (
    ConfigError,
    ContractError,
    KeyState,
    OnexError,
    OrchestratorContract,
    ReducerContract,
    state_topic,
    stored_key,
)
from onex_actors.registry import load_tree

from ._client import check_reachable, kafka_settings_of, tenant_given
from ._errors import as_onex_error, report

__all__ = ["state"]


def state(node: str, key: str, /, *, tenant: str = "global", config: Path | None = None) -> int:
    """Print a reducer key's (or a workflow instance's) committed state, from its changelog.

    Parameters
    ----------
    node
        The reducer's or orchestrator's node id, e.g. ``account``.
    key
        The key, as the reducer's ``key`` expression gives it (``a1``); for a workflow
        instance, its ``correlation_id`` (for one another workflow's step started, that
        step's ``command`` id).
    tenant
        The tenant whose state it is.
    config
        Config file naming the Kafka cluster.
    """
    try:
        tenant_given(tenant)
        settings = kafka_settings_of(config)
        _check_keeps_state(node, settings.contracts_dir)
        check_reachable(settings.kafka.bootstrap_servers)
        client = kafka_client_config(settings.kafka)
        name = stored_key(tenant, key)
        partition, record = newest_of_key(client, state_topic(node), name.encode())
        if record is None or record.value is None:
            raise ConfigError(
                f"{node} holds no state for key {key!r} of tenant {tenant!r} (partition "
                f"{partition} of {state_topic(node)}): no command of that key was folded, or "
                "its state was deleted"
            )
        held = KeyState.from_bytes(record.value)
    except (OnexError, ValueError) as exc:
        return report(exc if isinstance(exc, OnexError) else as_onex_error(exc))
    shown: dict[str, object] = {
        "node_id": node,
        "tenant_id": tenant,
        "key": key,
        "state": dict(held.value),
        "reflects": {"partition": held.partition, "offset": held.offset},
        "changed_at": held.changed_at,
        "changelog": {"topic": state_topic(node), "partition": partition, "offset": record.offset},
    }
    print(json.dumps(shown, indent=2))
    return 0


def _check_keeps_state(node: str, contracts_dir: Path) -> None:
    """Raise ``ConfigError`` when the project's tree says ``node`` keeps no state.

    A node the tree lacks (or a tree that does not load) is looked up on the cluster.
    """
    try:
        contract = load_tree(contracts_dir).nodes.get(node)
    except ContractError:
        return
    if contract is None or isinstance(contract, ReducerContract | OrchestratorContract):
        return
    kind = contract.kind.value
    raise ConfigError(
        f"{node} is {'an' if kind[0] in 'aeiou' else 'a'} {kind} node ({contracts_dir}): it "
        "keeps no state; "
        "`onex state` reads a reducer's keys and an orchestrator's instances"
    )
