"""``onex status``: one screen of a host's nodes, from its listener or its health op."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from onex_actors.app import kafka_client_config
from onex_actors.core import ConfigError, ContractError, OnexError, cmd_topic, new_command
from onex_actors.devinfra import command_topic_nodes, request
from onex_actors.registry import load_tree

from ._client import default_runtime, settings_of
from ._errors import report

__all__ = ["read_status", "status"]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

COLUMNS = ("node", "state", "restarts", "received", "ok", "error", "dlq", "inbox", "in flight")


def status(
    runtime: str | None = None,
    /,
    *,
    url: str | None = None,
    interval: float = 1.0,
    config: Path | None = None,
    timeout: float = 10.0,
) -> int:
    """Show a host's nodes: state, restarts, counts, inbox, throughput.

    Parameters
    ----------
    runtime
        Runtime to ask through Kafka (its ``health`` op) when there is no ``--url``.
        Default: ``runtime-dev``, or the tree's only runtime where it has no
        ``runtime-dev``.
    url
        The host's listener (``http.listen``), e.g. ``http://127.0.0.1:9100``: also
        gives readiness and throughput (two reads ``interval`` apart).
    interval
        Seconds between the two reads of ``/metrics``.
    config
        Config file naming the Kafka cluster (without ``--url``).
    timeout
        Seconds to wait for the host's answer.
    """
    try:
        if url is not None:
            text = read_status(url, interval=interval, timeout_s=timeout)
        else:
            text = _health_status(runtime, config, timeout)
    except OnexError as exc:
        return report(exc)
    print(text)
    return 0


def read_status(url: str, *, interval: float = 1.0, timeout_s: float = 10.0) -> str:
    """Read ``url``'s ``/readyz`` and ``/metrics`` (twice) and render the screen."""
    base = url.rstrip("/")
    try:
        with httpx2.Client(base_url=base, timeout=timeout_s) as client:
            ready = client.get("/readyz")
            before = _samples(client.get("/metrics").text)
            time.sleep(interval)
            after = _samples(client.get("/metrics").text)
    except httpx2.HTTPError as exc:
        raise ConfigError(f"cannot read the listener at {base}: {exc}") from None
    body = ready.json()
    state = "ready" if ready.status_code == 200 else f"not ready: {body.get('reason', '?')}"
    rows = []
    for node in sorted(_nodes(after)):
        answered = after.get(_key("onex_envelopes_answered_total", node=node, status="ok"), 0.0)
        errors = after.get(_key("onex_envelopes_answered_total", node=node, status="error"), 0.0)
        earlier = sum(
            before.get(_key("onex_envelopes_answered_total", node=node, status=s), 0.0)
            for s in ("ok", "error")
        )
        rate = (answered + errors - earlier) / interval if interval > 0 else 0.0
        up = after.get(_key("onex_node_up", node=node), 0.0)
        rows.append(
            [
                node,
                "running" if up else "stopped",
                _int(after.get(_key("onex_node_restarts_total", node=node), 0.0)),
                _int(after.get(_key("onex_envelopes_received_total", node=node), 0.0)),
                _int(answered),
                _int(errors),
                _int(_dead_letters(after, node)),
                _int(after.get(_key("onex_inbox_depth", node=node), 0.0)),
                _int(after.get(_key("onex_envelopes_in_flight", node=node), 0.0)),
                f"{rate:.1f}",
            ]
        )
    table = _table([*COLUMNS, "answered/s"], rows)
    return f"{base}: {state}\n{table}{_resumed_lines(body.get('resumed') or {})}"


def _health_status(runtime: str | None, config: Path | None, timeout_s: float) -> str:
    settings = settings_of(config)
    runtime = runtime or default_runtime(settings.contracts_dir)
    client = kafka_client_config(settings.kafka)
    _check_has_run(client, runtime, settings.contracts_dir)
    command = new_command(runtime, {"op": "health"})
    answer = request(client, command, timeout_s=timeout_s)
    if answer is None:
        raise ConfigError(
            f"no answer from runtime {runtime!r} within {timeout_s:g} s; is it running? "
            "(with its listener on, pass --url)"
        )
    if answer.error is not None:
        raise ConfigError(
            f"runtime {runtime!r} answered {answer.error.type}: {answer.error.message}"
        )
    nodes: Mapping[str, Any] = answer.payload.get("nodes") or {}  # type: ignore[assignment]
    rows = [
        [
            node_id,
            str(node.get("status")),
            str(node.get("restarts")),
            "-",
            str(node.get("handled_ok")),
            str(node.get("handled_error")),
            str(node.get("dead_letters")),
            str(node.get("inbox_depth")),
            str(node.get("in_flight")),
        ]
        for node_id, node in sorted(nodes.items())
    ]
    healthy = "healthy" if answer.payload.get("healthy") else "unhealthy"
    table = _table(list(COLUMNS), rows)
    resumed = _resumed_lines(answer.payload.get("resumed") or {})  # type: ignore[arg-type]
    return f"runtime {runtime} ({healthy}, from its health op)\n{table}{resumed}"


def _check_has_run(client: dict[str, Any], runtime: str, contracts_dir: Path) -> None:
    """Raise ``ConfigError`` at once when ``runtime`` never ran on the cluster.

    A runtime creates its own command topic as it starts: without one, nothing would
    answer its health op, so waiting out the timeout would only hide why. The runtimes
    of the project's tree that did run are named.
    """
    on_cluster = command_topic_nodes(client)
    if runtime in on_cluster:
        return
    try:
        runtimes = set(load_tree(contracts_dir).runtimes)
    except ContractError:
        runtimes = set()
    ran = sorted(on_cluster & runtimes)
    named = f"; of {contracts_dir}'s runtimes, these have: {', '.join(ran)}" if ran else ""
    raise ConfigError(
        f"runtime {runtime!r} has never run on this cluster (it has no command topic "
        f"{cmd_topic(runtime)}){named}"
    )


def _resumed_lines(resumed: Mapping[str, Any]) -> str:
    """One line per node: its group and where its command partitions resumed from."""
    lines = [
        f"{node_id}: group {entry.get('group')}, resumed at "
        + " ".join(
            f"p{p}@{'start' if o is None else o}" for p, o in (entry.get("offsets") or {}).items()
        )
        + f" ({entry.get('source')})"
        for node_id, entry in sorted(resumed.items())
    ]
    return "".join(f"\n{line}" for line in lines)


def _samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def _nodes(samples: Samples) -> set[str]:
    return {dict(labels)["node"] for name, labels in samples if name == "onex_node_up"}


def _dead_letters(samples: Samples, node: str) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "onex_envelopes_dead_lettered_total" and dict(labels).get("node") == node
    )


def _int(value: float) -> str:
    return str(int(value))


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)
