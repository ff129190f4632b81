"""The fault harness: every scenario against real processes, then the checker's table.

Starts its own Apache Kafka on 127.0.0.1:29392 and an embedded PostgreSQL (unless
DATABASE_URL is set, in which case the PostgreSQL scenario is skipped: it must stop
the server), runs the scenarios and prints one Markdown table row per scenario.

    python bench/faults.py [--commands 10000] [--only kill-9 sigterm ...]
        [--client kafka-python|confluent] [--delivery at_least_once|exactly_once]
        [--workload echo|fold|workflow|nested] [--store memory|disk]

``--workload fold`` puts a reducer under each fault instead of the echo node (the
scenarios that run a node of their own, db and crash ones, are not for it): after each
scenario every key's final state in the changelog is compared with a fold the harness
computes itself from the commands sent, and one wrong key fails the scenario.
``--workload workflow`` puts an orchestrator there (two echo steps, one after the other):
each start command read back must have one ``ok`` answer carrying its own input.
``--workload nested`` puts an orchestrator whose one step is that workflow there: each
start runs an instance of the other workflow, with the same check of its answers.
``--store disk`` runs its hosts with the on-disk state store (a host restarted after a
clean stop then reads only the changelog's tail).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import asyncpg

from onex_actors.app import demo_seed_sql
from onex_actors.devinfra import EmbeddedPostgres, LocalKafka
from onex_actors.testing import RawRecord, SentRecord, render_reports
from onex_actors.testing._netns import netns_unavailable
from onex_actors.testing.faults import (
    FaultLab,
    ScenarioResult,
    always_raising,
    broker_outage,
    kill_9_db_rows,
    kill_9_restart,
    malformed_records,
    move_node,
    network_partition,
    node_kills,
    postgres_outage,
    record_edges,
    reducer_kills,
    second_host,
    sigterm_restart,
    three_hosts,
)
from onex_actors.testing.strategies import hostile_records, malformed_record_values, sample

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_json_flag, print_json

PORT = 29392
FOLD_SCENARIOS = frozenset(
    {
        "kill-9",
        "broker",
        "sigterm",
        "second-host",
        "second-host-early",
        "three-hosts",
        "move",
        "move-kill",
        "partition",
        "partition-short",
        "partition-flap",
        "partition-later",
        "reducer-kills",
    }
)
"""The scenarios that fault the lab's own node, which ``--workload fold`` makes a reducer."""
FOLD_ONLY = frozenset({"reducer-kills"})
"""The scenarios of ``--workload fold`` alone (their reducer's keys are checked)."""


def scenarios(commands: int) -> dict[str, Callable[[FaultLab], ScenarioResult]]:
    """Every scenario, at full size."""
    return {
        "kill-9": lambda lab: kill_9_restart(lab, commands),
        "broker": lambda lab: broker_outage(lab, commands, outage_s=10),
        "postgres": lambda lab: postgres_outage(lab, commands // 10, outage_s=30),
        "db-rows": lambda lab: kill_9_db_rows(lab, commands // 5),
        "node-kills": lambda lab: node_kills(lab, commands, kills=1000),
        "reducer-kills": lambda lab: reducer_kills(lab, commands, kills=1000),
        "raising": lambda lab: always_raising(lab, commands // 10),
        "sigterm": lambda lab: sigterm_restart(lab, commands),
        "second-host": lambda lab: second_host(lab, commands),
        "second-host-early": lambda lab: second_host(lab, commands, kill_after_s=0.2),
        "partition": lambda lab: network_partition(lab, commands, cut_s=3 * lab.session_s),
        "partition-short": lambda lab: network_partition(lab, commands, cut_s=lab.session_s / 3),
        "partition-flap": lambda lab: network_partition(lab, commands, cut_s=30, flap_s=2),
        "partition-later": lambda lab: network_partition(
            lab, commands, cut_s=3 * lab.session_s, cut_later=True
        ),
        "move": lambda lab: move_node(lab, commands, kill=False),
        "move-kill": lambda lab: move_node(lab, commands, kill=True),
        "three-hosts": lambda lab: three_hosts(lab, commands),
        "fuzz": lambda lab: malformed_records(lab, lambda node: sample_malformed(node, 1000)),
        "edges": lambda lab: record_edges(lab, lambda node: sample_edges(node, 1000)),
    }


def sample_malformed(node: str, count: int) -> list[bytes]:
    """``count`` Hypothesis-generated malformed record values for ``node``."""
    return sample(malformed_record_values(node), count)


def sample_edges(node: str, count: int) -> list[RawRecord]:
    """``count`` Hypothesis-generated whole records for ``node``, sized for ``record_edges``."""
    return sample(hostile_records(node, envelope_limit=64 * 1024, producer_limit=60_000), count)


def seed(dsn: str) -> None:
    """Create the demo tables the PostgreSQL scenario reads."""

    async def run() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(demo_seed_sql())
        finally:
            await connection.close()

    asyncio.run(run())


def lost_ranges(lost: Sequence[SentRecord]) -> str:
    """The lost records' command offsets, as ranges per partition: where to look first."""
    by_partition: dict[int, list[int]] = {}
    for record in lost:
        by_partition.setdefault(record.partition, []).append(record.offset)
    parts = []
    for partition, offsets in sorted(by_partition.items()):
        offsets.sort()
        runs, start, last = [], offsets[0], offsets[0]
        for offset in offsets[1:]:
            if offset != last + 1:
                runs.append(f"{start}-{last}" if start != last else str(start))
                start = offset
            last = offset
        runs.append(f"{start}-{last}" if start != last else str(start))
        parts.append(f"{partition}: {', '.join(runs)}")
    return "; ".join(parts)


def main() -> None:
    """Run the chosen scenarios; exit 1 if any lost a command or the host crashed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument(
        "--client",
        choices=["kafka-python", "confluent"],
        default="kafka-python",
        help="the Kafka client of the hosts under test (kafka.client)",
    )
    parser.add_argument(
        "--group-protocol",
        choices=["auto", "classic", "consumer"],
        default="auto",
        help="the consumer group protocol of confluent hosts (kafka.group_protocol)",
    )
    parser.add_argument(
        "--delivery",
        choices=["at_least_once", "exactly_once"],
        default="at_least_once",
        help="the hosts' delivery.mode (exactly_once: results and offsets in transactions)",
    )
    parser.add_argument(
        "--workload",
        choices=["echo", "fold", "workflow", "nested"],
        default="echo",
        help="the node under fault: the echo effect, a reducer whose state is checked, "
        "an orchestrator of two echo steps whose every answer is checked, or one whose "
        "step is that workflow (nested)",
    )
    parser.add_argument(
        "--store",
        choices=["memory", "disk"],
        default="memory",
        help="the hosts' state.store (fold workload): disk puts the reducer's states in LMDB",
    )
    add_json_flag(parser)
    args = parser.parse_args()
    chosen = scenarios(args.commands)
    names = args.only or list(chosen)
    workdir = Path(tempfile.mkdtemp(prefix="onex-faults-"))
    broker = LocalKafka(port=PORT, controller_port=PORT + 1)
    broker.stop()
    broker.remove_data()
    postgres = None if os.environ.get("DATABASE_URL") else EmbeddedPostgres(workdir / "pg")
    rows = []
    finished = False
    try:
        lab = FaultLab(
            broker.start(),
            workdir,
            broker=broker,
            client=args.client,
            group_protocol=args.group_protocol,
            delivery=args.delivery,
            workload=args.workload,
            store=args.store,
        )
        if postgres is not None:
            postgres.start()
            seed(postgres.dsn)
            lab.postgres, lab.postgres_dsn = postgres, postgres.dsn
        no_netns = netns_unavailable() if any(n.startswith("partition") for n in names) else None
        for name in names:
            if name in ("postgres", "db-rows") and postgres is None:
                print("postgres: skipped (DATABASE_URL set; the scenario must stop the server)")
                continue
            if name.startswith("partition") and no_netns is not None:
                print(f"{name}: skipped (no network namespaces here: {no_netns})")
                continue
            if args.workload != "echo" and name not in FOLD_SCENARIOS:
                print(f"{name}: skipped (it runs a node of its own, not the reducer)")
                continue
            if name in FOLD_ONLY and args.workload != "fold":
                print(f"{name}: skipped (a reducer's scenario: --workload fold)")
                continue
            result = lab.with_state_checked(chosen[name](lab))
            rows.append(result)
            verdict = "pass" if result.passed else "FAIL"
            print(f"{name}: {verdict}: {result.note}", flush=True)
            if result.report.lost:
                print(f"  lost (partition: offsets): {lost_ranges(result.report.lost)}", flush=True)
        finished = True
    finally:
        broker.stop()
        broker.remove_data()
        if postgres is not None:
            postgres.remove()
        if finished and all(r.passed for r in rows):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"the hosts' logs and the contracts are kept in {workdir}", flush=True)
    print()
    print(render_reports([(r.name, r.report, r.note) for r in rows]))
    if args.json:
        passed = sum(r.passed for r in rows)
        print_json(
            {
                "scenarios": {
                    r.name: {
                        "passed": r.passed,
                        "sent": r.report.sent,
                        "answered": r.report.answered,
                        "lost": len(r.report.lost),
                        "duplicated": r.report.duplicated,
                        "reordered": r.report.reordered,
                        "dead_lettered": r.report.dead_lettered,
                        "committed_to_end": r.committed_to_end,
                        "longest_gap_s": r.longest_gap_s,
                        "takeover_s": r.takeover_s,
                        "keys": r.keys,
                        "keys_wrong": r.keys_wrong,
                        "note": r.note,
                    }
                    for r in rows
                },
                "client": args.client,
                "workload": args.workload,
                "store": args.store,
                "delivery": args.delivery,
                "group_protocol": args.group_protocol,
                "ratio": passed / max(1, len(rows)),
                "ratio_means": "scenarios passed / run",
            }
        )
    sys.exit(0 if all(r.passed for r in rows) else 1)


if __name__ == "__main__":
    main()
