"""Plot docs/bench-results.json (written by the benches' --record) as docs/benchmarks.png.

    python bench/plot.py

Left: throughput per benchmark and contender (log scale). Right: ping-pong latency,
p50 and p99. Needs matplotlib (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DOCS = Path(__file__).resolve().parents[1] / "docs"
KAFKA_CONTENDERS = [
    ("bare", "Kafka: bare kafka-python"),
    ("runtime", "Kafka: onex runtime (kafka-python)"),
    ("bare-confluent", "Kafka: bare confluent-kafka"),
    ("runtime-confluent", "Kafka: onex runtime (confluent)"),
    ("faststream", "Kafka: FastStream"),
]


def throughput_bars(results: dict[str, Any]) -> list[tuple[str, float]]:
    """(label, per second) for every throughput figure recorded."""
    bars = []
    if inproc := results.get("inprocess_echo"):
        bars += [
            ("in-process: codec floor", inproc["floor_env_s"]),
            ("in-process: onex runtime", inproc["runtime_env_s"]),
        ]
    if kafka := results.get("kafka_echo"):
        for key, label in KAFKA_CONTENDERS:
            if f"{key}_cmd_s" in kafka:
                bars.append((label, kafka[f"{key}_cmd_s"]))
    if db := results.get("db_handler"):
        bars += [
            ("Postgres: raw asyncpg", db["raw_q_s"]),
            ("Postgres: DbHandler", db["handler_q_s"]),
            ("Postgres: onex runtime", db["runtime_q_s"]),
        ]
    return bars


def latency_bars(results: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(label, p50 ms, p99 ms) for every latency figure recorded."""
    bars = []
    if inproc := results.get("inprocess_echo"):
        bars.append(("in-process: onex runtime", inproc["p50_ms"], inproc["p99_ms"]))
    if kafka := results.get("kafka_echo"):
        for key, label in KAFKA_CONTENDERS:
            if f"{key}_p50_ms" in kafka:
                bars.append((label, kafka[f"{key}_p50_ms"], kafka[f"{key}_p99_ms"]))
    bars.extend(
        (f"in-process, {row['nodes']} node(s)", row["ping_p50_ms"], row["ping_p99_ms"])
        for row in results.get("scale", {}).get("rows", [])
    )
    return bars


def main() -> None:
    """Draw both panels and save the PNG."""
    results = json.loads((DOCS / "bench-results.json").read_text())
    throughput, latency = throughput_bars(results), latency_bars(results)
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    labels, values = zip(*throughput, strict=True)
    left.barh(labels, values, color="tab:blue")
    left.set_xscale("log")
    left.set_xlabel("per second (log scale)")
    left.set_title("Throughput")
    left.invert_yaxis()
    for y, value in enumerate(values):
        left.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    names = [b[0] for b in latency]
    positions = range(len(latency))
    right.barh([p - 0.2 for p in positions], [b[2] for b in latency], 0.4, label="p99")
    right.barh([p + 0.2 for p in positions], [b[1] for b in latency], 0.4, label="p50")
    right.set_yticks(list(positions), names)
    right.set_xscale("log")
    right.set_xlabel("ms, one command in flight (log scale)")
    right.set_title("Ping-pong latency")
    right.invert_yaxis()
    right.legend()
    machine = next(iter(results.values()))["machine"]
    figure.suptitle(f"onex-actors benchmarks: medians, {machine}", fontsize=10)
    figure.tight_layout()
    figure.savefig(DOCS / "benchmarks.png", dpi=110)
    print(f"wrote {DOCS / 'benchmarks.png'}")


if __name__ == "__main__":
    main()
