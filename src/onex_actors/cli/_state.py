"""``onex state``: a reducer key's state, as its changelog holds it on the cluster."""

from __future__ import annotations

import difflib
import json
import uuid
from pathlib import Path

from onex_actors.app import kafka_client_config
from onex_actors.bridges.kafka import newest_of_key
from onex_actors.core import (
    BusError,
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
        stateful = _check_keeps_state(node, settings.contracts_dir)
        if stateful is not None and stateful.get(node) == "orchestrator":
            _check_instance_key(node, key)
        check_reachable(settings.kafka.bootstrap_servers)
        client = kafka_client_config(settings.kafka)
        name = stored_key(tenant, key)
        try:
            partition, record = newest_of_key(client, state_topic(node), name.encode())
        except BusError as exc:
            if stateful is None or node in stateful:
                raise
            missing = _not_in_tree(node, stateful, settings.contracts_dir)
            raise ConfigError(f"{exc}; {missing}") from None
        if record is None or record.value is None:
            raise ConfigError(_no_state(node, key, tenant, partition, stateful))
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


def _check_keeps_state(node: str, contracts_dir: Path) -> dict[str, str] | None:
    """Raise ``ConfigError`` when the project's tree says ``node`` keeps no state.

    Return the tree's nodes that keep state, by id, with their kind (``None`` if the
    tree does not load). A node the tree lacks is looked up on the cluster all the same:
    another project's runtime may host it.
    """
    try:
        nodes = load_tree(contracts_dir).nodes
    except ContractError:
        return None
    contract = nodes.get(node)
    if contract is not None and not isinstance(contract, ReducerContract | OrchestratorContract):
        kind = contract.kind.value
        raise ConfigError(
            f"{node} is {'an' if kind[0] in 'aeiou' else 'a'} {kind} node ({contracts_dir}): it "
            "keeps no state; "
            "`onex state` reads a reducer's keys and an orchestrator's instances"
        )
    return {
        node_id: c.kind.value
        for node_id, c in nodes.items()
        if isinstance(c, ReducerContract | OrchestratorContract)
    }


def _not_in_tree(node: str, stateful: dict[str, str], contracts_dir: Path) -> str:
    """Say that the project's tree lacks ``node`` either, and which it may have meant."""
    close = difflib.get_close_matches(node, sorted(stateful), n=1, cutoff=0.6)
    guess = f"; did you mean {close[0]!r}?" if close else ""
    return (
        f"{contracts_dir} has no node {node!r} either (its reducers and orchestrators: "
        f"{', '.join(sorted(stateful)) or 'none'}){guess}"
    )


def _check_instance_key(node: str, key: str) -> None:
    """Raise ``ConfigError`` unless ``key`` can name an instance: a correlation id."""
    try:
        uuid.UUID(key)
    except ValueError:
        raise ConfigError(
            f"{node} is an orchestrator: its keys are workflow instances' correlation ids, "
            f"UUIDs, and {key!r} is none (`onex emit {node} ... --correlation-id ID` starts "
            "one with an id of your choosing)"
        ) from None


def _no_state(
    node: str, key: str, tenant: str, partition: int, stateful: dict[str, str] | None
) -> str:
    """Say that ``node`` holds nothing for ``key``, in its kind's words."""
    where = f"(partition {partition} of {state_topic(node)})"
    if stateful is not None and stateful.get(node) == "orchestrator":
        return (
            f"{node} holds no workflow instance {key!r} of tenant {tenant!r} {where}: no "
            "start command had that correlation id, or the instance was deleted"
        )
    return (
        f"{node} holds no state for key {key!r} of tenant {tenant!r} {where}: no command of "
        "that key was folded, or its state was deleted"
    )
