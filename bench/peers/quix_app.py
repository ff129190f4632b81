"""The echo as a Quix Streams application, for bench/kafka_echo.py (its own process and venv).

    python quix_app.py BOOTSTRAP SOURCE SINK GROUP MODE STATE_DIR [COMMIT_INTERVAL_S]

MODE ``stateless``: ``apply`` builds a result from each command and ``to_topic`` sends
it, Quix's JSON (de)serializers on both topics, the way its documentation writes a
transformation. ``fold`` and ``fold-eos``: the same, after a stateful fold per record key
(a count in RocksDB, with its changelog topic), at least once and exactly once. Every
other setting is Quix's default (its commit interval of 5 s among them, unless
COMMIT_INTERVAL_S is given: kafka_echo.py's ``--quix-commit-interval``). It runs until
killed; the benchmark watches the sink (or, exactly once, the group's commits).
"""

from __future__ import annotations

import sys
from typing import Any

from quixstreams import Application, State


def result(command: dict[str, Any], count: int | None = None) -> dict[str, Any]:
    """What the runtime's echo answers, in a dict: an ``evt`` caused by the command."""
    payload = dict(command["payload"])
    if count is not None:
        payload["count"] = count
    return {
        "envelope_id": command["envelope_id"],
        "type": "evt",
        "tenant_id": command["tenant_id"],
        "node_id": command["node_id"],
        "correlation_id": command["correlation_id"],
        "causation_id": command["envelope_id"],
        "created_at": command["created_at"],
        "payload": payload,
        "status": "ok",
        "headers": command.get("headers", {}),
        "schema_version": 1,
    }


def fold(command: dict[str, Any], state: State) -> dict[str, Any]:
    """Count the commands of this record key, keep the count, answer with it."""
    count = state.get("count", 0) + 1
    state.set("count", count)
    return result(command, count)


def main(
    bootstrap: str,
    source: str,
    sink: str,
    group: str,
    mode: str,
    state_dir: str,
    commit_interval_s: str | None = None,
) -> None:
    options: dict[str, Any] = {}
    if commit_interval_s is not None:
        options["commit_interval"] = float(commit_interval_s)
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once" if mode == "fold-eos" else "at-least-once",
        state_dir=state_dir,
        **options,
    )
    commands = app.topic(source, value_deserializer="json")
    results = app.topic(sink, value_serializer="json")
    frame = app.dataframe(commands)
    frame = frame.apply(result) if mode == "stateless" else frame.apply(fold, stateful=True)
    frame.to_topic(results)
    app.run()


if __name__ == "__main__":
    main(*sys.argv[1:8])
