"""``onex emit`` and ``onex tail``: talk to a runtime over Kafka."""

from __future__ import annotations

import difflib
import json
import os
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

from onex_actors.app import HostConfig, from_project_root, kafka_client_config, load_config
from onex_actors.core import (
    PARTITION_KEY_HEADER,
    BusError,
    ConfigError,
    ContractError,
    EnvelopeError,
    EnvelopeStatus,
    EnvelopeType,
    OnexEnvelope,
    OnexError,
    OrchestratorContract,
    Reducer,
    ReducerContract,
    TopicPattern,
    check_slug,
    cmd_topic,
    keyed_for_instance,
    new_command,
    non_finite_path,
)
from onex_actors.devinfra import StateRecord, command_topic_nodes, follow, request
from onex_actors.registry import load_tree

from ._errors import as_onex_error, report

__all__ = [
    "check_reachable",
    "emit",
    "kafka_settings_of",
    "parse_payload",
    "settings_of",
    "tail",
    "tenant_given",
]

DEFAULT_CONFIG = Path("config/local.yaml")
"""The config file used without ``--config``, found from the project root."""


def _client(config: Path | None) -> dict[str, Any]:
    return kafka_client_config(settings_of(config).kafka)


def settings_of(config: Path | None) -> HostConfig:
    """Return the config file's settings, once a broker it names answers."""
    settings = kafka_settings_of(config)
    check_reachable(settings.kafka.bootstrap_servers)
    return settings


def kafka_settings_of(config: Path | None) -> HostConfig:
    """Return the config's settings (a Kafka bus), without reaching the broker yet.

    The file given, else the project's ``config/local.yaml``; a project without one
    gets the defaults and the ``ONEX_*`` environment, as ``onex host`` does.
    """
    if config is not None and not config.is_file():
        raise ConfigError(
            f"{config}: no such config file (pass --config with the file that names your "
            "Kafka cluster, e.g. config/kafka.yaml, or leave it out for the defaults and "
            "the ONEX_* environment)"
        )
    if config is None and (local := from_project_root(DEFAULT_CONFIG)).is_file():
        config = local
    settings = load_config(config, environ=os.environ)
    if settings.bus.kind != "kafka":
        raise ConfigError(
            f"{config}: bus.kind is {settings.bus.kind!r}; onex emit/tail talk to a runtime "
            "over Kafka (use config/kafka.yaml or config/local.yaml)"
            if config is not None
            else "no config file (config/local.yaml) and no ONEX_KAFKA__BOOTSTRAP_SERVERS: "
            "onex emit, tail and state talk to a runtime over Kafka; pass --config with the "
            "file that names your cluster, or set ONEX_KAFKA__BOOTSTRAP_SERVERS"
        )
    return settings


def parse_payload(payload: str) -> dict[str, Any]:
    """Return a command payload given on the command line (a JSON object)."""
    try:
        body = json.loads(payload, parse_constant=_not_json)
    except ValueError as exc:  # json.JSONDecodeError, or NaN and Infinity refused
        raise ConfigError(f"payload is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ConfigError(f"payload must be a JSON object, got {type(body).__name__}")
    past = non_finite_path("payload", body)
    if past is not None:
        raise ConfigError(
            f"payload is not JSON: {past} is past a double's range (such as 1e400); send a "
            "finite number, or the value as a string"
        )
    return body


def tenant_given(tenant: str) -> str:
    """Return ``--tenant``'s value; ``ConfigError`` if it is no tenant id."""
    try:
        return check_slug(tenant)
    except ValueError as exc:
        raise ConfigError(f"--tenant {tenant!r}: {exc}") from None


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not a JSON value (JSON has no NaN or Infinity)")


REACH_TIMEOUT_S = 3.0
"""How long ``onex emit``/``tail`` try to reach a bootstrap server before saying so."""


def check_reachable(bootstrap_servers: str) -> None:
    """Raise ``BusError`` unless some bootstrap server accepts a TCP connection.

    The clients themselves wait 30 s and then say only "Unable to bootstrap".
    """
    servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), REACH_TIMEOUT_S):
                return
        except (OSError, ValueError):
            continue
    raise BusError(
        f"no Kafka broker answers at {bootstrap_servers} (tried for {REACH_TIMEOUT_S:g} s): "
        "start one with `onex broker up` (or `python3 scripts/dev.py broker-up`), or name "
        "yours with ONEX_KAFKA__BOOTSTRAP_SERVERS or --config"
    )


def emit(
    node: str,
    payload: str = "{}",
    /,
    *,
    wait: bool = True,
    timeout: float = 30.0,
    tenant: str = "global",
    key: str | None = None,
    result_from: str | None = None,
    correlation_id: str | None = None,
    config: Path | None = None,
) -> int:
    """Send a command to NODE and print its result event.

    Parameters
    ----------
    node
        Target node id, e.g. ``echo-node``.
    payload
        The command's payload, a JSON object.
    wait
        Wait for the result event (``--no-wait`` only sends).
    timeout
        Seconds to wait for the result.
    tenant
        Tenant of the command.
    key
        Partition key (commands with the same key keep their order).
    result_from
        Print the result of this node instead: the end of a flow NODE starts
        (its ``then`` commands keep the correlation id).
    correlation_id
        The command's correlation id, a UUID (a new one unless given): the flow it
        starts, and an orchestrator's instance (``onex state NODE ID`` shows it).
    config
        Config file naming the Kafka cluster.
    """
    try:
        body = parse_payload(payload)
        tenant_given(tenant)
        headers = {PARTITION_KEY_HEADER: key} if key else {}
        flow = _correlation_id(correlation_id)
        command = new_command(node, body, tenant_id=tenant, headers=headers, correlation_id=flow)
        settings = settings_of(config)
        if key is None:
            command = _keyed_for_its_state(command, settings.contracts_dir)
        client = kafka_client_config(settings.kafka)
        runtimes = _check_hosted(client, node, settings.contracts_dir)
        started_by = (
            f"; {' or '.join(runtimes)} in {settings.contracts_dir} hosts it (python3 "
            f"scripts/dev.py run-host {runtimes[0]})"
            if runtimes
            else ""
        )
        result = request(
            client,
            command,
            wait=wait,
            timeout_s=timeout,
            result_from=result_from,
            notice=lambda text: print(f"note: {text}{started_by}", file=sys.stderr, flush=True),
        )
    except (OnexError, ValueError) as exc:
        return report(exc if isinstance(exc, OnexError) else as_onex_error(exc))
    if not wait:
        print(
            json.dumps(
                {"sent": str(command.envelope_id), "correlation_id": str(command.correlation_id)}
            )
        )
        return 0
    if result is None:
        return report(
            ConfigError(
                f"no result from {result_from or node!r} within {timeout:g} s (correlation_id "
                f"{command.correlation_id}); is a runtime hosting it running? The command "
                f"waits on {cmd_topic(node)} for one"
            )
        )
    print(json.dumps(result.model_dump(mode="json"), indent=2))
    if result.type is EnvelopeType.DLQ:
        error = result.error
        reason = f"{error.type}: {error.message}" if error is not None else "no reason given"
        return report(ConfigError(f"{node}: the command was dead-lettered ({reason})"))
    if result.status is EnvelopeStatus.ERROR and result.error is not None:
        return report(
            ConfigError(f"{node} answered with {result.error.type}: {result.error.message}")
        )
    return 0


def _correlation_id(text: str | None) -> uuid.UUID | None:
    """Parse ``--correlation-id`` (``None``: a new flow)."""
    if text is None:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ConfigError(
            f"--correlation-id {text!r} is not a UUID (e.g. {uuid.uuid4()})"
        ) from None


def _keyed_for_its_state(command: OnexEnvelope, contracts_dir: Path) -> OnexEnvelope:
    """Key a reducer's command by its state key, an orchestrator's by its instance.

    So it lands where its state lives. (A command keyed otherwise is answered too, after
    the node sends it on; one with no state key is answered with why.)
    """
    try:
        contract = load_tree(contracts_dir).nodes.get(command.node_id)
    except ContractError:
        return command
    if isinstance(contract, ReducerContract):
        return Reducer(contract).keyed(command)
    if isinstance(contract, OrchestratorContract):
        return keyed_for_instance(command)
    return command


def _check_hosted(client: dict[str, Any], node: str, contracts_dir: Path) -> list[str]:
    """Raise ``ConfigError`` at once when no runtime hosts ``node``, naming those hosted.

    Returns the runtimes of the tree that host a node not hosted on the cluster yet.

    A node hosted on the cluster has a command topic (a runtime creates them as it
    starts); one a runtime contract of the project's tree hosts may simply not run yet,
    so its command is sent to wait. Anything else is a misspelling, or a node of
    another project: nothing is sent and no topic is created for it.
    """
    on_cluster = command_topic_nodes(client)
    if node in on_cluster:
        return []
    try:
        tree = load_tree(contracts_dir)
    except ContractError:
        tree = None
    in_tree = tree.hosts_by_node() if tree is not None else {}
    if node in in_tree:
        return in_tree[node]
    runtimes = set(tree.runtimes) if tree is not None else set()
    hosted = sorted((on_cluster | set(in_tree)) - runtimes)
    close = difflib.get_close_matches(node, hosted, n=3, cutoff=0.6)
    listed = [*close, *(n for n in hosted if n not in close)]
    guess = f" Did you mean {close[0]!r}?" if close else ""
    where = f" and no runtime contract in {contracts_dir} hosts it" if tree is not None else ""
    raise ConfigError(
        f"no runtime hosts {node!r}: its command topic {cmd_topic(node)} does not exist on "
        f"{client.get('bootstrap_servers')}{where}, so nothing was sent.{guess} "
        f"Hosted nodes: {', '.join(listed) or 'none'}"
    )


def tail(
    pattern: str = "onex.#",
    /,
    *,
    from_beginning: bool = False,
    max_records: int | None = None,
    read_uncommitted: bool = False,
    config: Path | None = None,
) -> int:
    """Follow topics matching PATTERN and print each envelope on one line.

    Parameters
    ----------
    pattern
        Topic pattern: ``*`` is one segment, a final ``#`` one or more.
    from_beginning
        Start at the oldest records instead of new ones.
    max_records
        Stop after this many records.
    read_uncommitted
        Also show records of open and aborted transactions (by default only committed
        ones, as every onex reader sees them).
    config
        Config file naming the Kafka cluster.
    """
    seen = 0
    try:
        TopicPattern(pattern)  # refused before anything is said or reached
        client = _client(config)
        start = "their oldest records" if from_beginning else "new records"
        print(
            f"following {pattern} on {client['bootstrap_servers']} from {start} (Ctrl-C stops)",
            file=sys.stderr,
            flush=True,
        )
        isolation = "read_uncommitted" if read_uncommitted else "read_committed"
        for topic, partition, offset, item in follow(
            client, pattern, from_beginning=from_beginning, isolation_level=isolation
        ):
            print(_line(topic, partition, offset, item), flush=True)
            seen += 1
            if max_records is not None and seen >= max_records:
                break
    except OnexError as exc:
        return report(exc)
    except KeyboardInterrupt:
        pass
    return 0


def _line(
    topic: str, partition: int, offset: int, item: OnexEnvelope | EnvelopeError | StateRecord
) -> str:
    where = f"{topic} [{partition}/{offset}]"
    if isinstance(item, StateRecord):
        if item.state is None:
            return f"{where} state {item.key} {item.problem or 'deleted'}"
        value = json.dumps(item.state.value, separators=(",", ":"))
        reflects = f"reflects {item.state.partition}/{item.state.offset}"
        return f"{where} state {item.key} {value} ({reflects})"
    if isinstance(item, EnvelopeError):
        return f"{where} undecodable ({item.reason}): {item}"
    status = f" {item.status.value}" if item.status is not None else ""
    error = f" {item.error.type}: {item.error.message}" if item.error is not None else ""
    payload = json.dumps(item.payload, separators=(",", ":"))
    return (
        f"{where} {item.type.value}{status} {item.node_id} "
        f"corr={str(item.correlation_id)[:8]}{error} {payload}"
    )


DEFAULT_RUNTIME = "runtime-dev"
"""The runtime the commands pick when none is named and the tree has it."""


def default_runtime(contracts_dir: Path) -> str:
    """Return ``runtime-dev``, or the tree's one runtime where it has no ``runtime-dev``."""
    try:
        runtimes = sorted(load_tree(contracts_dir).runtimes)
    except ContractError:
        return DEFAULT_RUNTIME  # the command says what is wrong with the tree
    if DEFAULT_RUNTIME in runtimes or len(runtimes) != 1:
        return DEFAULT_RUNTIME
    return runtimes[0]
