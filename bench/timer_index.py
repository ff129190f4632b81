"""The timer index: what the once-a-second scan for due keys costs, by how many keys are timed.

In-process, no broker: ``--keys`` timed keys, due at random over a day, of which a few
are due at the scan. It times, as medians of ``--runs``, the scan of a plain dict of
every key's due time (the index before ``runtime._due``) against ``DueIndex.due``, and
what a write of a timed key costs each way (setting its due time).

    python bench/timer_index.py [--keys 1000000] [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from onex_actors.runtime._due import DueIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_json_flag, print_json

DAY_S = 86_400.0


def median_s(action: object, runs: int) -> float:
    """The median wall time of ``runs`` calls of ``action``."""
    assert callable(action)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    add_json_flag(parser)
    args = parser.parse_args()
    chance = random.Random(1)
    dues = {f"tenant/key-{i}": chance.random() * DAY_S for i in range(args.keys)}
    now = 10.0  # about one key in 8,640 due

    table: dict[str, float] = {}
    index = DueIndex()

    def fill_table() -> None:
        for key, due in dues.items():
            table[key] = due + chance.random()  # as below

    def fill_index() -> None:
        for key, due in dues.items():
            index.set(key, due + chance.random())  # a new time each run: a real write

    table_write_s = median_s(fill_table, args.runs) / args.keys
    index_write_s = median_s(fill_index, args.runs) / args.keys
    table_scan_s = median_s(lambda: [k for k, d in table.items() if d <= now], args.runs)
    index_scan_s = median_s(lambda: index.due(now), args.runs)
    due = len(index.due(now))
    figures = {
        "keys": args.keys,
        "due_at_scan": due,
        "dict_scan_ms": round(table_scan_s * 1e3, 3),
        "index_scan_ms": round(index_scan_s * 1e3, 3),
        "dict_write_us": round(table_write_s * 1e6, 3),
        "index_write_us": round(index_write_s * 1e6, 3),
    }
    print(f"{args.keys:,} timed keys, {due:,} due at the scan; medians of {args.runs} runs")
    scans = (
        f"dict of every key {figures['dict_scan_ms']} ms, DueIndex {figures['index_scan_ms']} ms"
    )
    print(f"scan: {scans}")
    print(
        f"write of a timed key: dict {figures['dict_write_us']} µs, "
        f"DueIndex {figures['index_write_us']} µs"
    )
    print(f"scan, dict/DueIndex: {table_scan_s / max(index_scan_s, 1e-9):,.0f}x")
    if args.json:
        print_json(figures)


if __name__ == "__main__":
    main()
