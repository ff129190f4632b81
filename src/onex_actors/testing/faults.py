"""Fault scenarios: a bounded workload against real processes, then the delivery checker.

Each scenario takes a :class:`FaultLab` (a broker on 127.0.0.1, a working directory,
and, for the scenarios that stop them, the broker and PostgreSQL servers themselves)
and returns a :class:`ScenarioResult`: the checker's report plus what was measured.
``bench/faults.py`` runs them at full size; the test suite runs each smaller.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import asyncpg
import trio
from pydantic import JsonValue

from onex_actors.app import (
    BusSettings,
    DeliverySettings,
    HostConfig,
    KafkaSettings,
    RuntimeHost,
    open_runtime_host,
)
from onex_actors.core import (
    OnexEnvelope,
    cmd_topic,
)
from onex_actors.registry import FileRegistry
from onex_actors.runtime import Handler, HandlerHealth

from ._checker import DeliveryReport, SentRecord
from ._fault_lab import FaultLab, ScenarioResult, Setup
from ._netns import NetworkCut
from ._workload import (
    FOLD_NODE,
    CommandStream,
    OutcomeReader,
    RawRecord,
    committed_offsets,
    send_commands,
    send_raw,
    send_records,
)

__all__ = [
    "FaultLab",
    "ScenarioResult",
    "always_raising",
    "broker_outage",
    "kill_9_db_rows",
    "kill_9_restart",
    "malformed_records",
    "move_node",
    "network_partition",
    "node_kills",
    "postgres_outage",
    "record_edges",
    "reducer_kills",
    "second_host",
    "sigterm_restart",
    "three_hosts",
]


def kill_9_restart(lab: FaultLab, commands: int) -> ScenarioResult:
    """Kill -9 of the host a fifth of the way through a stream; a restart finishes it.

    Passes when nothing is lost and every command answered twice lies past the offsets
    committed at the kill: at-least-once repeats only what was never committed.
    """
    setup = lab.echo("kill9")
    reader = lab.reader(setup)
    at_kill: dict[int, int] = {}
    answered: set[str] = set()

    def seen_at_kill() -> None:
        at_kill.update(committed_offsets(lab.bootstrap, setup.runtime, cmd_topic(setup.node)))
        reader.read_to_end()
        answered.update(reader.causes)

    with lab.stream(setup, commands) as stream:
        sent, report, survived = _kill_then_restart(
            lab, setup, reader, stream, commands // 5, seen_at_kill
        )
    reader.close()
    window = sum(
        1 for r in sent if r.envelope_id in answered and r.offset >= at_kill.get(r.partition, 0)
    )
    answers = Counter(o.cause for o in reader.outcomes if o.kind == "evt")
    committed_again = _committed_again(lab, setup, sent, answers, at_kill)
    note = (
        f"killed after {len(answered):,} answers; uncommitted window {window:,} as read "
        f"right after the kill; {len(committed_again)} committed commands answered again"
    )
    return ScenarioResult("kill -9 and restart", report, note, survived and not committed_again)


def sigterm_restart(lab: FaultLab, commands: int) -> ScenarioResult:
    """SIGTERM under load (drain, commit, exit 0), then a restart: nothing handled twice."""
    setup = lab.echo("sigterm")
    reader = lab.reader(setup)
    with lab.stream(setup, commands) as stream:
        with lab.host(setup) as proc:
            _wait_for_answers(lab, reader, stream, commands // 5)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        reader.read_to_end()
        answered = len(reader.causes)
        with lab.host(setup) as proc:
            report = lab.settle(reader, stream.join())
            survived = proc.poll() is None and code == 0
    reader.close()
    note = f"stopped after {answered:,} answers; first host exited {code}"
    return ScenarioResult("SIGTERM and restart", report, note, survived)


def move_node(lab: FaultLab, commands: int, *, kill: bool, stream_s: float = 20) -> ScenarioResult:
    """Move a node under steady load from runtime A to runtime B of the same tree.

    A is stopped with SIGTERM (or killed with SIGKILL, B starting at once) after a third
    of the answers; B, a consumer group of its own, takes the node over where A's
    commits left it. Passes when nothing is lost, no command A had committed is answered
    again, and the duplicates are no more than A's uncommitted window.
    """
    setup = lab.echo("move")
    other = lab.another_runtime(setup, "moved")
    reader = lab.reader(setup)
    topic = cmd_topic(setup.node)
    with _steady_stream(lab, setup, commands, stream_s) as stream:
        with lab.host(setup) as first:
            _wait_for_answers(lab, reader, stream, commands // 3)
            first.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            code = first.wait(timeout=60)
        committed = committed_offsets(lab.bootstrap, setup.runtime, topic)  # A's last
        # killed: B starts at once, and its hand-over waits for A's session to end
        with lab.host(other) as second:
            report = lab.settle(reader, stream.join())
            survived = second.poll() is None
    reader.close()
    sent = stream.sent()
    answers = Counter(o.cause for o in reader.outcomes if o.kind == "evt")
    again = _committed_again(lab, setup, sent, answers, committed)
    window = sum(1 for r in sent if answers[r.envelope_id] > 1)
    how = "killed (SIGKILL), B started at once" if kill else f"stopped (SIGTERM, exit {code})"
    note = (
        f"A {how} after a third of the answers; {len(again)} commands A had committed "
        f"answered again; {window} answered twice, all past A's last commit ({lab.client})"
    )
    name = "node moved, A killed" if kill else "node moved, A stopped"
    return ScenarioResult(name, report, note, survived and not again)


def network_partition(
    lab: FaultLab,
    commands: int,
    *,
    cut_s: float,
    flap_s: float | None = None,
    cut_later: bool = False,
    stream_s: float = 30,
) -> ScenarioResult:
    """Cut one of two hosts of a runtime off the broker under load, then let it back.

    The cut-off host runs in a network namespace of its own (``NetworkCut``) and keeps
    running: past the session timeout its partitions move to the other host, and it comes
    back with records in flight (a zombie). ``flap_s``: cut and restore every ``flap_s``
    for ``cut_s`` instead of one cut. ``cut_later``: the host cut off is the one that
    joined second (else the first, which held every partition before the other joined).
    Passes when nothing is lost, both hosts are alive
    at the end and the zombie said it lost its partitions (when the cut outlasted its
    session).
    """
    setup = lab.echo("partition")
    reader = lab.reader(setup)
    port = int(lab.bootstrap.rpartition(":")[2])
    zombie_log = lab.workdir / f"cut-off-{setup.runtime}.log"
    with (
        NetworkCut(port) as cut,
        _steady_stream(lab, setup, commands, stream_s) as stream,
        contextlib.ExitStack() as hosts,
    ):
        if cut_later:
            other = hosts.enter_context(lab.host(setup))
        cut_off = hosts.enter_context(lab.host(setup, prefix=cut.command(), log=zombie_log))
        if not cut_later:
            other = hosts.enter_context(lab.host(setup))
        _wait_for_answers(lab, reader, stream, commands // 4)
        cut_at = reader.answered(stream.sent())
        if flap_s is None:
            cut.cut()
            time.sleep(cut_s)  # the fault itself: the link stays down this long
            cut.restore()
        else:
            until = time.monotonic() + cut_s
            while time.monotonic() < until:
                cut.cut()
                time.sleep(flap_s)
                cut.restore()
                time.sleep(flap_s)
        reader.read_to_end()
        restored_at = reader.answered(stream.sent())
        report = lab.settle(reader, stream.join())
        outlasted = flap_s is None and cut_s * 1000 > lab.session_timeout_ms
        said = _said_lost(zombie_log, wait_s=30 if outlasted else 0)
        alive = cut_off.poll() is None and other.poll() is None
    reader.close()
    how = f"cut {cut_s:g} s" if flap_s is None else f"flapping every {flap_s:g} s for {cut_s:g} s"
    how += " (the host that joined second)" if cut_later else ""
    note = (
        f"one of 2 hosts {how} from {cut_at:,} answers (session {lab.session_timeout_ms} ms), "
        f"{restored_at:,} answered when it ended; both alive at the end: {alive}; the cut-off "
        f"host said it lost partitions: {said} ({lab.client})"
    )
    name = "partition, " + (
        "flapping" if flap_s is not None else "past the session" if outlasted else "short"
    )
    name += ", the later host" if cut_later else ""
    return ScenarioResult(name, report, note, alive and (said or not outlasted))


def _said_lost(log: Path, wait_s: float) -> bool:
    """Whether a host's ``log`` says it lost its partitions, waiting up to ``wait_s``.

    A host cut off past its session learns it was fenced only when it reaches the
    brokers again, at its next heartbeat after the link is back.
    """
    deadline = time.monotonic() + wait_s
    while True:
        if log.exists() and "lost its" in log.read_text():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)  # polling another process's log


def second_host(
    lab: FaultLab, commands: int, stream_s: float = 20, *, kill_after_s: float | None = None
) -> ScenarioResult:
    """Run a second host that joins mid-stream and is then killed: two rebalances.

    Commands arrive steadily over ``stream_s``, so results should flow all along; the
    longest gap after the second host starts, in which no result was produced at all,
    is what the rebalances cost (kill -9 adds the session timeout for the partitions
    the dead host held, unless the survivor's keep flowing meanwhile). The second host
    is killed once half the commands are answered, or ``kill_after_s`` after it is
    ready (a fraction of a second: during its first rebalance, while the first host's
    records are in flight on the partitions it keeps).
    """
    setup = lab.echo("join")
    reader = lab.reader(setup)
    with (
        _steady_stream(lab, setup, commands, stream_s) as stream,
        lab.host(setup) as first,
    ):
        _wait_for_answers(lab, reader, stream, commands // 5)
        with lab.host(setup) as second:
            started = time.time()
            joined_at = reader.answered(stream.sent())
            if kill_after_s is None:
                _wait_for_answers(lab, reader, stream, commands // 2)
            else:
                time.sleep(kill_after_s)  # the fault itself: killed this long after ready
            second.send_signal(signal.SIGKILL)
            killed = time.time()
            second.wait()
        killed_at = reader.answered(stream.sent())
        report = lab.settle(reader, stream.join())
        survived = first.poll() is None
    reader.close()
    gap, gap_at = reader.longest_gap(started)
    takeover = reader.slowest_partition(stream.sent(), killed)
    note = (
        f"second host joined at {joined_at:,} answers, killed at {killed_at:,} "
        f"({killed - started:.1f} s later); longest gap without results {gap:.2f} s, "
        f"from {gap_at - started:.1f} s after the join; every partition answered again "
        f"{takeover:.1f} s after the kill ({lab.client})"
    )
    name = "second host joins, then kill -9"
    if kill_after_s is not None:
        name += f" {kill_after_s:g} s after it is ready"
    return ScenarioResult(
        name,
        report,
        note,
        survived,
        longest_gap_s=gap,
        takeover_s=takeover,
    )


def three_hosts(lab: FaultLab, commands: int, stream_s: float = 20) -> ScenarioResult:
    """Run three hosts of one runtime in one group under load; kill one, then add a fourth.

    Commands arrive steadily over ``stream_s``; one host is killed with SIGKILL at a
    third of the answers and a new one joins at half of them, so the group rebalances
    three times (the kill, once its session times out, and the join) while it works.
    """
    setup = lab.echo("three")
    reader = lab.reader(setup)
    with (
        _steady_stream(lab, setup, commands, stream_s) as stream,
        contextlib.ExitStack() as hosts,
    ):
        first, victim, third = (hosts.enter_context(lab.host(setup)) for _ in range(3))
        _wait_for_answers(lab, reader, stream, commands // 3)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed_at = reader.answered(stream.sent())
        _wait_for_answers(lab, reader, stream, commands // 2)
        added = hosts.enter_context(lab.host(setup))
        added_at = reader.answered(stream.sent())
        report = lab.settle(reader, stream.join())
        survivors = [first, third, added]
        survived = all(proc.poll() is None for proc in survivors)
    reader.close()
    note = (
        f"3 hosts; one killed (SIGKILL) at {killed_at:,} answers, a 4th added at "
        f"{added_at:,}; the other 3 alive at the end: {survived} ({lab.client})"
    )
    return ScenarioResult("three hosts, one killed, one added", report, note, survived)


def _steady_stream(lab: FaultLab, setup: Setup, commands: int, stream_s: float) -> CommandStream:
    """Commands for ``setup``'s node arriving steadily over ``stream_s``, 100 at a time."""
    return lab.stream(setup, commands, batch=100, rate=commands / stream_s)


def _wait_for_answers(
    lab: FaultLab, reader: OutcomeReader, stream: CommandStream, count: int
) -> None:
    reader.read_until(lambda r: r.answered(stream.sent()) >= count, lab.deadline_s)


def broker_outage(lab: FaultLab, commands: int, outage_s: float = 10) -> ScenarioResult:
    """Stop the broker for ``outage_s`` mid-stream, then start it; the host rides it out."""
    if lab.broker is None:
        raise ValueError("the broker-outage scenario needs the lab's broker process")
    setup = lab.echo("broker")
    reader = lab.reader(setup)
    with (
        lab.stream(setup, commands) as stream,
        lab.host(setup) as proc,
    ):
        reader.read_until(lambda r: r.answered(stream.sent()) >= commands // 4, lab.deadline_s)
        stopped_at = reader.answered(stream.sent())
        lab.broker.stop()
        time.sleep(outage_s)  # the fault itself: the broker stays away this long
        lab.broker.start()
        report = lab.settle(reader, stream.join())
        survived = proc.poll() is None
    reader.close()
    note = f"broker away {outage_s:g} s from {stopped_at:,} answers"
    return ScenarioResult("broker stopped", report, note, survived)


def postgres_outage(lab: FaultLab, commands: int, outage_s: float = 30) -> ScenarioResult:
    """PostgreSQL stops for ``outage_s`` under load of a db node; retries ride it out."""
    if lab.postgres is None or lab.postgres_dsn is None:
        raise ValueError("the Postgres-outage scenario needs the lab's PostgreSQL server")
    body = (
        "effect_type: db\nretry: {max_attempts: 60, backoff_initial_s: 0.2, backoff_max_s: 2}\n"
        "db: {connection: default, sql: 'select count(*)::int as n from users', params: {}}\n"
    )
    setup = lab.contracts("pg", {"count": body}, ["db"])
    reader = lab.reader(setup)
    with lab.host(setup) as proc:
        sent = send_commands(lab.bootstrap, setup.node, commands // 2, payload={})
        reader.read_until(lambda r: r.answered(sent) >= commands // 4, lab.deadline_s)
        lab.postgres.stop()
        sent += send_commands(
            lab.bootstrap, setup.node, commands - len(sent), start=len(sent), payload={}
        )
        time.sleep(outage_s)  # the fault itself: the database stays away this long
        lab.postgres.start()
        report = lab.settle(reader, sent)
        survived = proc.poll() is None
    reader.close()
    dead = report.dead_lettered
    note = f"database away {outage_s:g} s; {dead} dead letters (retries should cover it)"
    return ScenarioResult("PostgreSQL stopped", report, note, survived)


def kill_9_db_rows(lab: FaultLab, commands: int) -> ScenarioResult:
    """Kill -9 a db node inserting one row per command mid-stream, then restart it.

    The node keeps its answers durably (``durable_idempotency``): every command the
    restarted host is given again was either rolled back with its record or is
    answered from the record. Passes when the table holds exactly one row per command.
    """
    if lab.postgres_dsn is None:
        raise ValueError("the db-rows scenario needs the lab's PostgreSQL")
    table = f"kill9_rows_{uuid.uuid4().hex[:8]}"
    _sql(lab.postgres_dsn, f"create table {table} (id bigserial primary key, envelope_id uuid)")
    body = (
        "effect_type: db\ndurable_idempotency: {}\n"
        f"db: {{sql: 'insert into {table} (envelope_id) values (:id)', "
        "params: {id: '$.envelope_id'}}\n"
    )
    setup = lab.contracts("dbrows", {"rows": body}, ["db"])
    reader = lab.reader(setup)
    killed_at: list[int] = []
    with lab.stream(setup, commands) as stream:
        sent, report, survived = _kill_then_restart(
            lab,
            setup,
            reader,
            stream,
            commands // 3,
            lambda: killed_at.append(reader.answered(stream.sent())),
        )
    reader.close()
    ((rows, distinct),) = _sql(
        lab.postgres_dsn, f"select count(*), count(distinct envelope_id) from {table}"
    )
    repeated = report.duplicated
    note = (
        f"killed at {killed_at[0]:,} answers; {rows:,} rows for {len(sent):,} commands "
        f"({distinct:,} distinct); {repeated:,} commands answered twice, from the record"
    )
    exact = rows == distinct == len(sent)
    return ScenarioResult("kill -9, db rows", report, note, survived and exact)


def _committed_again(
    lab: FaultLab,
    setup: Setup,
    sent: Sequence[SentRecord],
    answers: Mapping[str | None, int],
    committed: Mapping[int, int],
) -> list[SentRecord]:
    """Return the commands answered more than once though what answers them was committed.

    At-least-once repeats only what comes after the committed offsets: a command is
    answered again only if the record whose decision answers it (``answered_at``) lay
    past its partition's committed offset.
    """
    at = lab.answered_at(setup, sent)
    return [
        r
        for r in sent
        if r.envelope_id is not None
        and answers.get(r.envelope_id, 0) > 1
        and at[r.envelope_id][1] < committed.get(at[r.envelope_id][0], 0)
    ]


def _kill_then_restart(
    lab: FaultLab,
    setup: Setup,
    reader: OutcomeReader,
    stream: CommandStream,
    answers: int,
    at_kill: Callable[[], None],
) -> tuple[list[SentRecord], DeliveryReport, bool]:
    """Kill -9 the host after ``answers`` answers, run ``at_kill``, restart, settle.

    Returns what was sent, the checker's report and whether the restarted host survived.
    """
    with lab.host(setup) as proc:
        _wait_for_answers(lab, reader, stream, answers)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    at_kill()
    with lab.host(setup) as proc:
        sent = stream.join()
        report = lab.settle(reader, sent)
        survived = proc.poll() is None
    return sent, report, survived


def _sql(dsn: str, sql: str) -> list[tuple[object, ...]]:
    """Run ``sql`` on a connection of its own; return its rows."""

    async def run() -> list[tuple[object, ...]]:
        connection = await asyncpg.connect(dsn)
        try:
            return [tuple(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close()

    return asyncio.run(run())


def malformed_records(
    lab: FaultLab, values_for: Callable[[str], Sequence[bytes]]
) -> ScenarioResult:
    """Feed ``values_for(node)`` (bytes, broken envelopes...) into a host's command topic."""
    setup = lab.echo("fuzz")
    reader = lab.reader(setup)
    with lab.host(setup) as proc:
        sent = send_raw(lab.bootstrap, setup.node, values_for(setup.node))
        report = lab.settle(reader, sent)
        survived = proc.poll() is None
    reader.close()
    kinds = ", ".join(f"{k} {n}" for k, n in report.errors.most_common(4))
    return ScenarioResult("malformed records", report, kinds or "no dead letters", survived)


def record_edges(
    lab: FaultLab,
    records_for: Callable[[str], Sequence[RawRecord]],
    *,
    envelope_limit: int = 64 * 1024,
    producer_limit: int = 60_000,
) -> ScenarioResult:
    """Whole records from every corner Kafka allows (``strategies.hostile_records``).

    The host runs with ``max_envelope_bytes=envelope_limit`` and
    ``kafka.max_request_bytes=producer_limit``, the limits the records are sized around.
    Passes when every record is answered or dead-lettered, the host is alive, and its
    committed offsets reach the end of every partition.
    """
    setup = lab.echo("edges")
    reader = lab.reader(setup)
    limits = {
        "ONEX_MAX_ENVELOPE_BYTES": str(envelope_limit),
        "ONEX_KAFKA__MAX_REQUEST_BYTES": str(producer_limit),
    }
    with lab.host(setup, limits) as proc:
        records = records_for(setup.node)
        sent = send_records(lab.bootstrap, setup.node, records)
        report = lab.settle(reader, sent)
        committed = lab.committed_to_end(setup)
        survived = proc.poll() is None
    reader.close()
    codecs = Counter(r.codec or "none" for r in records)
    empty = sum(r.value is None for r in records)
    kinds = ", ".join(f"{k} {n}" for k, n in report.errors.most_common(6))
    note = (
        f"{len(records)} records ({empty} without a value; "
        + ", ".join(f"{c} {n}" for c, n in sorted(codecs.items()))
        + f"); dead letters: {kinds or 'none'}; committed to the end: {committed}"
    )
    return ScenarioResult("record edges", report, note, survived, committed)


class _Raising:
    """A handler with a bug: every call raises (not a ``HandlerError``), crashing its actor."""

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        raise RuntimeError(f"bug while handling {envelope.envelope_id}")

    async def health_check(self) -> HandlerHealth:
        return HandlerHealth(healthy=True)

    async def aclose(self) -> None:
        return None


def always_raising(lab: FaultLab, commands: int) -> ScenarioResult:
    """Run a node whose handler always raises: restarted to its intensity, then stopped.

    Its sibling keeps answering; every command of both is accounted for.
    """
    restart = "restart: {max_restarts: 5, window_s: 60, backoff_initial_s: 0.01}\n"
    setup = lab.contracts(
        "raise",
        {"bad": f"effect_type: local\n{restart}", "good": "effect_type: local\n"},
        ["local"],
    )
    bad, good = setup.nodes["bad"], setup.nodes["good"]

    async def run() -> tuple[list[SentRecord], bool, bool]:
        raising: dict[str, Handler] = {bad: _Raising()}
        async with _in_process_host(lab, setup, raising) as host:
            sent = await trio.to_thread.run_sync(
                lambda: send_commands(lab.bootstrap, bad, commands)
            )
            sent += await trio.to_thread.run_sync(
                lambda: send_commands(lab.bootstrap, good, commands)
            )
            reader = lab.reader(setup)
            await trio.to_thread.run_sync(lambda: lab.settle(reader, sent))
            reader.close()
            health = host.health_check().nodes
            return sent, health[bad].healthy, health[good].healthy

    sent, bad_healthy, good_healthy = trio.run(run)
    reader = lab.reader(setup)
    report = lab.settle(reader, sent)
    reader.close()
    note = f"raising node healthy={bad_healthy}, sibling healthy={good_healthy}"
    return ScenarioResult("handler always raises", report, note, good_healthy and not bad_healthy)


def node_kills(lab: FaultLab, commands: int, kills: int = 1000) -> ScenarioResult:
    """Kill a node actor ``kills`` times under load; compare its sibling's throughput."""
    restart = "restart: {max_restarts: 1000000, window_s: 60, backoff_initial_s: 0}\n"
    setup = lab.contracts(
        "kills",
        {"victim": f"effect_type: local\n{restart}", "sibling": "effect_type: local\n"},
        ["local"],
    )
    victim, sibling = setup.nodes["victim"], setup.nodes["sibling"]

    async def timed(node: str, count: int, start: int) -> tuple[list[SentRecord], float]:
        reader = lab.reader(setup)
        began = time.perf_counter()
        sent = await trio.to_thread.run_sync(
            lambda: send_commands(lab.bootstrap, node, count, start=start)
        )
        await trio.to_thread.run_sync(
            lambda: reader.read_until(lambda r: r.answered(sent) >= count, lab.deadline_s)
        )
        reader.close()
        return sent, count / (time.perf_counter() - began)

    async def run() -> tuple[list[SentRecord], float, float, int]:
        async with _in_process_host(lab, setup, {}) as host:
            baseline_sent, baseline = await timed(sibling, commands, 0)
            killer = _Killer(host, victim, kills)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(killer.run)
                victim_sent = await trio.to_thread.run_sync(
                    lambda: send_commands(lab.bootstrap, victim, commands)
                )
                under_sent, under = await timed(sibling, commands, commands)
                # the nursery waits for every kill, however fast the sibling's work was
            return [*baseline_sent, *victim_sent, *under_sent], baseline, under, killer.done

    sent, baseline, under, done = trio.run(run)
    reader = lab.reader(setup)
    report = lab.settle(reader, sent)
    reader.close()
    change = (under / baseline - 1) * 100
    note = (
        f"{done} kills; sibling {baseline:,.0f} → {under:,.0f} cmd/s ({change:+.0f}%) "
        "while the victim was killed"
    )
    return ScenarioResult("node actor killed", report, note)


def reducer_kills(lab: FaultLab, commands: int, kills: int = 1000) -> ScenarioResult:
    """Kill the fold workload's reducer actor ``kills`` times while it folds a stream.

    A killed actor's slices are handled again by its restart, as duplicates of states
    it had decided: passes when nothing is lost and, checked after it (``workload:
    fold``), every key's state and every intent are exact.
    """
    restart = "restart: {max_restarts: 1000000, window_s: 60, backoff_initial_s: 0}\n"
    nodes = {"tally": FOLD_NODE + restart, "sink": "effect_type: local\n"}
    setup = lab.contracts("rkills", nodes, ["local"], "tally")

    async def run() -> tuple[list[SentRecord], int]:
        async with _in_process_host(lab, setup, {}) as host:
            killer = _Killer(host, setup.node, kills)
            sent: list[SentRecord] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(killer.run)
                sent = await trio.to_thread.run_sync(
                    lambda: send_commands(lab.bootstrap, setup.node, commands, fold=True)
                )
                reader = lab.reader(setup)
                await trio.to_thread.run_sync(
                    lambda: reader.read_until(
                        lambda r: r.answered(sent) >= commands, lab.deadline_s
                    )
                )
                reader.close()
            return sent, killer.done

    sent, done = trio.run(run)
    reader = lab.reader(setup)
    report = lab.settle(reader, sent)
    reader.close()
    note = f"reducer actor killed {done:,} times while it folded {commands:,} commands"
    return ScenarioResult("reducer actor killed 1,000 times", report, note, not report.lost)


class _Killer:
    """Kills ``node``'s actor ``kills`` times, each a millisecond after it runs again."""

    def __init__(self, host: RuntimeHost, node: str, kills: int) -> None:
        self.host = host
        self.node = node
        self.kills = kills
        self.done = 0
        """Kills so far."""

    async def run(self) -> None:
        """Kill until ``kills`` kills are done."""
        actor = self.host.runtime.actor(self.node)
        while self.done < self.kills:
            await actor.wait_running()
            await trio.sleep(0.001)
            if self.host.runtime.kill(self.node):
                self.done += 1


def _in_process_host(
    lab: FaultLab, setup: Setup, handlers: Mapping[str, Handler]
) -> AbstractAsyncContextManager[RuntimeHost]:
    """``setup``'s runtime inside this process (to reach its actors), on the lab's broker."""
    config = HostConfig(
        bus=BusSettings(kind="kafka"),
        kafka=KafkaSettings(
            bootstrap_servers=lab.bootstrap,
            session_timeout_ms=lab.session_timeout_ms,
            client="confluent" if lab.client == "confluent" else "kafka-python",
        ),
        commit_interval_s=0.5,
        delivery=DeliverySettings.model_validate({"mode": lab.delivery}),
    )
    return open_runtime_host(
        setup.runtime, config, registry=FileRegistry(setup.root), handlers=handlers
    )
