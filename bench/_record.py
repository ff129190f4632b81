"""Recording benchmark figures in docs/bench-results.json, for the plot and the docs."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "bench-results.json"


def machine() -> str:
    """The machine in words: CPU model, cores, Python."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def record(name: str, figures: dict[str, Any]) -> None:
    """Store ``figures`` of benchmark ``name`` with the command and the machine."""
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[name] = {
        "command": " ".join(["python", "/".join(Path(sys.argv[0]).parts[-2:]), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        **figures,
    }
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--json``: end the output with one JSON line of the figures."""
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")


def print_json(figures: dict[str, Any]) -> None:
    """Print ``figures`` and the machine as one JSON object on one line (the last).

    By convention the headline ratio is under ``ratio`` and each contender's rate under
    a key ending in ``_per_s``.
    """
    print(json.dumps({**figures, "machine": machine()}, sort_keys=True), flush=True)


def add_gc_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--gc-threshold``: the young-generation GC threshold, the same for every contender.

    The host raises it to its ``gc_threshold`` (500,000) when it starts; a benchmark sets
    it once, up front, so the baselines in the same process run under the same setting.
    ``0`` keeps the interpreter's default (700) for everyone, the host included.
    """
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=500_000,
        help="young-generation GC threshold for every contender (0: the interpreter's 700)",
    )


def apply_gc(args: argparse.Namespace) -> int | None:
    """Set the process's GC threshold from ``--gc-threshold``; return the host's setting."""
    from onex_actors.app import raise_gc_threshold

    threshold: int | None = args.gc_threshold or None
    raise_gc_threshold(threshold)
    return threshold
