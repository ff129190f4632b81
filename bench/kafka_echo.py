"""Echo over a real broker: the runtime, as a user gets it, against bare pipes and peers.

Throughput: COMMANDS ~200-byte commands over KEYS record keys (``--keys``, 10,000 unless
given) are produced first; then
each contender drains them: consume, produce one result per command, commit. It is timed
from its first result until the broker holds every result (end offsets of its output
topic; exactly once, until its group has committed every command): start-up and group
join are left out for every contender alike (``steady_rate``).
The runtime runs with the contract's defaults and opens its bus from the config, as
``omninode-runtime-host`` does. The bare pipe is one thread with one KafkaConsumer and
one KafkaProducer (same linger and batch size as the runtime's producer), forwarding
each value, flushing and committing per batch. The bare pipe + codec does the same and,
per record, the least any envelope runtime must: decode the command, build its result,
encode it with the runtime's key and headers. Every contender runs under the same GC
threshold (``--gc-threshold``, the host's default).

The peers: the same echo written with FastStream's Kafka broker (aiokafka), the way its
documentation writes a handler that answers on another topic (each result confirmed),
and in its batch form; and as a Quix Streams application (``peers/quix_app.py``, in a
venv of its own made on first use): stateless ``apply`` → ``to_topic``, and a stateful
fold per key at least once and exactly once, all on Quix's defaults. The runtime's fold
contenders host a reducer counting per key (its state in a changelog topic) with the
same commands, each keyed by its reducer key (as ``onex emit`` writes them); the
``-disk`` ones keep its committed states in the on-disk store (LMDB). The ``-traced``
ones run with ``tracing.enabled`` (every flow sampled; ``-traced-1pct``: 1 %), exporting
to an OTLP/HTTP sink in this process that answers every export at once.

Changelog: for each runtime fold contender, the records its changelog topic holds at
the end of the timed run, per command (exactly once, its transaction markers too): one
per command, less the states of a key that a later one in the same slice or
transaction made redundant (docs/state.md). For Quix's folds, its changelog topic's
records once the app has stopped, per command: Quix writes each key's newest state once
per checkpoint (its commit, every 5 s), so a run of a few seconds writes each key about
once or twice.

Host CPU: for each runtime contender, the CPU time (user and system) its host process
and their children (workers, a traced host's span export process) spent from its first
answer's wait until every command was answered, per command. Times its throughput it
says how many cores the host kept busy: about one in every run on the 2-core machine
of docs/benchmarks.md, so a slower run there is the host doing more work per command
(smaller batches, as the broker and the bench take the other core), not waiting.

Latency: one command in flight at a time (PINGS of them) through each contender, timed
by the same client (confluent-kafka, linger 0) from send to the result's arrival.

    python bench/kafka_echo.py [--commands 50000] [--pings 500] [--runs 3] [--bootstrap B]
        [--only bare bare-codec bare-confluent bare-confluent-codec runtime runtime-confluent
                runtime-eos runtime-confluent-eos runtime-confluent-fold runtime-confluent-fold-eos
                runtime-confluent-fold-disk runtime-confluent-fold-disk-eos
                faststream faststream-batch quix quix-fold quix-fold-eos ...]
        [--keys N] [--gc-threshold N] [--transaction-interval S] [--quix-commit-interval S]
        [--record] [--json]

Without --bootstrap it starts a local Apache Kafka on 127.0.0.1:29292 and stops it after.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import logging
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError

from onex_actors.cli._workers import WORKER_COMMAND

try:
    from faststream.kafka import KafkaBroker, KafkaMessage
except ImportError:  # only the FastStream contender needs it
    KafkaBroker = KafkaMessage = None

from onex_actors.core import (
    PARTITION_KEY_HEADER,
    OnexEnvelope,
    cmd_topic,
    decode_envelope,
    encode_envelope,
    evt_topic,
    new_command,
    record_headers,
    record_key,
    record_key_and_headers,
    result_of,
    state_topic,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kafka import KEYS, broker, produce_commands
from _record import add_gc_flag, add_json_flag, apply_gc, print_json, record

PARTITIONS = 4
GC: list[int | None] = [None]
HOST_CPU: list[float | None] = [None]
SPANS_DROPPED: list[int | None] = [None]
"""The last traced run's spans dropped by its host (its log's count at the stop)."""
"""The last runtime run's host CPU per command, µs (its process tree, children included)."""
"""The GC threshold every contender runs under (``--gc-threshold``), the host's too."""
KEY_COUNT = [KEYS]
"""The record keys the commands are spread over (``--keys``), for every contender."""
CHANGELOG: list[float | None] = [None]
"""The last fold run's changelog records per command (see the module's docstring)."""
PRODUCER = {"linger_ms": 1, "batch_size": 256 * 1024}
"""The runtime's producer settings (bridges.kafka.ProducerBridge), for every contender."""


def create(bootstrap: str, topics: list[str]) -> None:
    """Create ``topics`` with the same settings for every contender."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics])
    finally:
        admin.close()


def wait_for(bootstrap: str, topic: str, target: int, timeout_s: float = 180) -> float:
    """Seconds until ``topic`` holds ``target`` records (its end offsets, every 20 ms)."""
    with outputs(bootstrap, topic) as count:
        return _seconds_until(count, target, timeout_s, 0.02)


@contextmanager
def outputs(bootstrap: str, topic: str) -> Iterator[Callable[[], int]]:
    """How many records ``topic`` holds (the sum of its end offsets), asked when called."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    try:
        yield lambda: sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


@contextmanager
def commits(bootstrap: str, group: str, topic: str) -> Iterator[Callable[[], int]]:
    """How many records of ``topic`` ``group`` has committed, asked when called.

    The finish line of an exactly-once contender: a transaction commits the offsets with
    the results, so they become visible together (its output topic's end offsets also
    count the transactions' commit markers).
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)

    def committed() -> int:
        try:
            offsets = admin.list_group_offsets(group).get(group, {})
        except KafkaError as exc:  # a fresh broker still placing the coordinator: ask again
            if not exc.retriable:
                raise
            return 0
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic)

    try:
        yield committed
    finally:
        admin.close()


def steady_rate(
    count: Callable[[], int],
    commands: int,
    timeout_s: float = 300,
    every_s: float = 0.02,
    *,
    started: Callable[[], int] | None = None,
) -> float:
    """Commands/s from a contender's first answer until ``count()`` reaches ``commands``.

    Every contender is timed the same way, from its first answer: its start-up, its
    group join and its first fetch are left out, so a process that starts slowly (Quix's
    imports, aiokafka's join) is measured on what it forwards, as the runtime is.
    ``started`` counts the answers when ``count`` is not what shows the first one (an
    exactly-once contender: its first output comes before its first commit).
    """
    first = started or count
    _seconds_until(first, 1, timeout_s, every_s / 4)
    before = first()
    return (commands - before) / _seconds_until(count, commands, timeout_s, every_s)


def _seconds_until(
    count: Callable[[], int], target: int, timeout_s: float, every_s: float
) -> float:
    """Seconds until ``count()`` reaches ``target``, asked every ``every_s``."""
    started = time.monotonic()
    while (reached := count()) < target:
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{reached} of {target} after {timeout_s} s")
        time.sleep(every_s)
    return time.monotonic() - started


class BarePipe:
    """The baseline: consume → produce → flush → commit, in one thread."""

    def __init__(self, bootstrap: str, source: str, sink: str, *, codec: bool = False) -> None:
        self.codec = codec
        self.consumer = KafkaConsumer(
            source,
            bootstrap_servers=bootstrap,
            group_id=f"bare-{uuid.uuid4().hex[:8]}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
        )
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER)
        self.sink = sink
        self.polls = self.batches = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        """Forward every record until stopped."""
        while not self.stopping.is_set():
            batch = self.consumer.poll(timeout_ms=50)
            self.polls += 1
            self.batches += bool(batch)
            for records in batch.values():
                for r in records:
                    if self.codec:
                        self.send_result(r.value)
                    else:
                        self.producer.send(self.sink, value=r.value, key=r.key)
            if batch:
                self.producer.flush()
                self.consumer.commit()
        self.consumer.close()
        self.producer.close()

    def send_result(self, value: bytes) -> None:
        """Decode the command, build its result, encode it with the runtime's key/headers."""
        result = result_of(decode_envelope(value), {"echo": True})
        key, headers = record_key_and_headers(result)
        self.producer.send(self.sink, value=encode_envelope(result), key=key, headers=list(headers))

    def __enter__(self) -> BarePipe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(30)  # a thread hung inside kafka-python's poll is left behind


class BareConfluentPipe:
    """The baseline on librdkafka: consume → produce → flush → commit, in one thread.

    ``codec``: each command decoded and answered with its result envelope, encoded with
    the runtime's key and headers (``bare-confluent-codec``: the least any runtime with
    this envelope does on this client, no routing, inboxes, tickets or offsets kept).
    """

    def __init__(self, bootstrap: str, source: str, sink: str, *, codec: bool = False) -> None:
        from confluent_kafka import Consumer, Producer

        self.codec = codec
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bare-ck-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([source])
        self.producer = Producer(
            {"bootstrap.servers": bootstrap, "linger.ms": PRODUCER["linger_ms"]}
        )
        self.sink = sink
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        """Forward every record until stopped."""
        while not self.stopping.is_set():
            # consume() waits for a full batch or its timeout: wait for one, take the rest
            first = self.consumer.poll(0.05)
            if first is None:
                continue
            batch = [first, *self.consumer.consume(num_messages=499, timeout=0)]
            for r in batch:
                if r.error() is not None:
                    continue
                if self.codec:
                    result = result_of(decode_envelope(r.value()), {"echo": True})
                    key, headers = record_key_and_headers(result)
                    value = encode_envelope(result)
                    self.producer.produce(self.sink, value=value, key=key, headers=list(headers))
                else:
                    self.producer.produce(self.sink, value=r.value(), key=r.key())
            if batch:
                self.producer.flush()
                self.consumer.commit(asynchronous=False)
        self.consumer.close()

    def __enter__(self) -> BareConfluentPipe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join()


class PingClient:
    """Sends one command and waits for its answer on ``sink``; repeats.

    The same client for every contender: librdkafka's (linger 0), so what it adds to a
    round trip is small and the same whichever client the contender uses.
    """

    def __init__(self, bootstrap: str, node: str, sink: str, *, fold: bool = False) -> None:
        """``fold``: pings for a reducer keyed by ``input.k``, keyed as ``onex emit`` keys them."""
        from confluent_kafka import Consumer, Producer
        from confluent_kafka import TopicPartition as CKTopicPartition

        self.node, self.sink, self.fold = node, sink, fold
        # Kafka's default partitioner, as the runtime's producers and `onex emit` use: a
        # fold's ping lands in its key's partition (librdkafka's own would send it on)
        self.producer = Producer(
            {"bootstrap.servers": bootstrap, "linger.ms": 0, "partitioner": "murmur2_random"}
        )
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"ping-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        partitions = []
        for p in range(PARTITIONS):
            _, high = self.consumer.get_watermark_offsets(CKTopicPartition(sink, p), timeout=10)
            partitions.append(CKTopicPartition(sink, p, high))
        self.consumer.assign(partitions)

    def ping(self, matches: Callable[[bytes, Any], bool]) -> float:
        """Round trip of one command, in seconds."""
        if self.fold:
            key = f"ping-{uuid.uuid4().hex[:2]}"
            command = new_command(
                self.node,
                {"ping": uuid.uuid4().hex, "k": key, "pad": "x" * 34},
                headers={PARTITION_KEY_HEADER: f"global/{key}"},
            )
        else:
            command = new_command(self.node, {"ping": uuid.uuid4().hex, "pad": "x" * 40})
        started = time.perf_counter()
        self.producer.produce(
            cmd_topic(self.node),
            value=encode_envelope(command),
            key=record_key(command),
            headers=record_headers(command),
        )
        self.producer.flush()
        while True:
            message = self.consumer.poll(1.0)
            if message is not None and message.error() is None:
                value = message.value()
                assert value is not None
                if matches(value, command):
                    return time.perf_counter() - started

    def close(self) -> None:
        """Close both clients."""
        self.producer.flush()
        self.consumer.close()


def bare_answers(value: bytes, command: Any) -> bool:
    """The bare pipe forwards the command itself."""
    return json.loads(value)["envelope_id"] == str(command.envelope_id)


def runtime_answers(value: bytes, command: Any) -> bool:
    """The runtime answers with an evt caused by the command."""
    return decode_envelope(value).causation_id == command.envelope_id


def bare_confluent_run(
    bootstrap: str, commands: int, pings: int, *, codec: bool = False
) -> tuple[float, list[float]]:
    """Throughput and ping latencies of the bare librdkafka pipe (``codec``: answering)."""
    node = f"bare-ck-{uuid.uuid4().hex[:8]}"
    sink = evt_topic(node)
    create(bootstrap, [cmd_topic(node), sink])
    produce_commands(bootstrap, node, commands, keys=KEY_COUNT[0], **PRODUCER)
    pipe = BareConfluentPipe(bootstrap, cmd_topic(node), sink, codec=codec)
    with pipe, outputs(bootstrap, sink) as count:
        rate = steady_rate(count, commands)
        client = PingClient(bootstrap, node, sink)
        answers = runtime_answers if codec else bare_answers
        latencies = [client.ping(answers) for _ in range(pings)]
        client.close()
    return rate, latencies


def bare_run(
    bootstrap: str, commands: int, pings: int, *, codec: bool = False
) -> tuple[float, list[float]]:
    """Throughput (commands/s) and ping latencies of the bare pipe."""
    node = f"bare-{uuid.uuid4().hex[:8]}"
    sink = evt_topic(node)
    create(bootstrap, [cmd_topic(node), sink])
    produce_commands(bootstrap, node, commands, keys=KEY_COUNT[0], **PRODUCER)
    with BarePipe(bootstrap, cmd_topic(node), sink, codec=codec) as pipe:
        try:
            with outputs(bootstrap, sink) as count:
                rate = steady_rate(count, commands)
        except TimeoutError:
            # evidence for the hang kafka-python showed here once (issue 13): this bare
            # consumer carries none of bridges.kafka's repairs
            coordinator = pipe.consumer._coordinator
            print(
                f"bare pipe stalled: assignment {sorted(pipe.consumer.assignment())}, "
                f"polls {pipe.polls}, batches {pipe.batches}, "
                f"need_rejoin {coordinator.need_rejoin()}, state {coordinator.state}",
                file=sys.stderr,
            )
            raise
        client = PingClient(bootstrap, node, sink)
        answers = runtime_answers if codec else bare_answers
        latencies = [client.ping(answers) for _ in range(pings)]
        client.close()
    return rate, latencies


def runtime_run(
    bootstrap: str,
    commands: int,
    pings: int,
    client: str = "kafka-python",
    *,
    workers: int = 1,
    scraped: bool = False,
    exactly_once: bool = False,
    fold: bool = False,
    disk: bool = False,
    traced: float | None = None,
) -> tuple[float, list[float]]:
    """Throughput and ping latencies of ``omninode-runtime-host`` hosting echo.

    ``fold``: a reducer instead, one counter per key (``key: input.k``, ``fold: {count:
    state.count + 1}``), its state in its changelog topic, over ``KEYS`` keys. ``disk``: its
    committed states in the on-disk store (``state.store: disk``) instead of memory.

    The host runs as its own process, as a user runs it (and as Quix's app runs), so
    what measures it never shares its interpreter: the contract's defaults, the bus
    opened from the config (``ONEX_...`` variables), ``--workers`` processes in one
    group. ``scraped``: with the HTTP listener on and ``/metrics`` read every second
    meanwhile (a Prometheus scraping 15 times more often than its default).
    ``exactly_once``: ``delivery: exactly_once`` at its default transaction interval;
    done when the offsets of every command are committed (with their results).
    """
    tag = uuid.uuid4().hex[:8]
    node, runtime = f"echo-{tag}", f"runtime-{tag}"
    create(bootstrap, [cmd_topic(node), evt_topic(node)])
    produce_commands(bootstrap, node, commands, fold=fold, keys=KEY_COUNT[0], **PRODUCER)
    env = {
        **os.environ,
        "ONEX_BUS__KIND": "kafka",
        "ONEX_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "ONEX_KAFKA__CLIENT": client,
        "ONEX_KAFKA__START_LOCAL_BROKER": "false",
        "ONEX_DELIVERY__MODE": "exactly_once" if exactly_once else "at_least_once",
        "ONEX_GC_THRESHOLD": "null" if GC[0] is None else str(GC[0]),
    }
    if exactly_once and TRANSACTION_INTERVAL[0] is not None:
        env["ONEX_DELIVERY__TRANSACTION_INTERVAL_S"] = str(TRANSACTION_INTERVAL[0])
    port = free_port()
    if scraped:
        env["ONEX_HTTP__LISTEN"] = f"127.0.0.1:{port}"
    sink = OtlpSink() if traced is not None else None
    if sink is not None:
        env |= {
            "ONEX_TRACING__ENABLED": "true",
            "ONEX_TRACING__SAMPLER_RATIO": str(traced),
            "ONEX_TRACING__OTLP_ENDPOINT": sink.endpoint,
        }
    with tempfile.TemporaryDirectory(prefix="onex-echo-") as tree:
        root = Path(tree)
        if disk:
            env |= {"ONEX_STATE__STORE": "disk", "ONEX_STATE__PATH": str(root / "state")}
        (root / "runtime").mkdir()
        (root / "nodes").mkdir()
        (root / "runtime" / f"{runtime}.yaml").write_text(
            f"kind: runtime_host\nnode_id: {runtime}\nversion: '0.1.0'\n"
            f"subscriptions: {{cmd_topics: ['{cmd_topic(node)}']}}\n"
            f"handlers: {{families: [local]}}\nhost_selector: {{node_ids: [{node}]}}\n"
        )
        (root / "nodes" / f"{node}.yaml").write_text(  # every runtime setting its default
            f"kind: reducer\nnode_id: {node}\nversion: '0.1.0'\nkey: input.k\n"
            "state: {initial: {count: 0}}\nfold: {assign: {count: state.count + 1}}\n"
            if fold
            else f"kind: effect\nnode_id: {node}\nversion: '0.1.0'\neffect_type: local\n"
        )
        options = ["--runtime-node-id", runtime, "--contracts-dir", str(root)]
        log = (root / "host.log").open("w")
        host = subprocess.Popen(
            [*WORKER_COMMAND, *options, "--workers", str(workers)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        scraper = Scraper(f"http://127.0.0.1:{port}/metrics") if scraped else None
        try:
            assert host.stdout is not None
            for line in host.stdout:
                if " ready: " in line:
                    break
            else:
                raise RuntimeError(f"the host never said it was ready (exit {host.wait()})")
            if scraper is not None:
                scraper.start()
            with (
                outputs(bootstrap, evt_topic(node)) as answered,
                commits(bootstrap, runtime, cmd_topic(node)) as committed,
            ):
                cpu_before = tree_cpu_s(host.pid)
                if exactly_once:
                    rate = steady_rate(committed, commands, started=answered)
                else:
                    rate = steady_rate(answered, commands)
                HOST_CPU[0] = (tree_cpu_s(host.pid) - cpu_before) / commands * 1e6
            if fold:
                with outputs(bootstrap, state_topic(node)) as changelog:
                    CHANGELOG[0] = changelog() / commands
            ping = PingClient(bootstrap, node, evt_topic(node), fold=fold)
            latencies = [ping.ping(runtime_answers) for _ in range(pings)]
            ping.close()
        finally:
            if scraper is not None:
                scraper.stop()
            host.send_signal(signal.SIGTERM)
            host.wait(timeout=120)
            log.close()
            if sink is not None:
                sink.stop()
                SPANS_DROPPED[0] = spans_dropped((root / "host.log").read_text())
    if sink is not None and not sink.exports:
        raise RuntimeError("the traced host exported no span to the sink")
    return rate, latencies


def spans_dropped(log: str) -> int:
    """The spans a traced host's ``log`` says it dropped (none if it says nothing)."""
    found = re.findall(r"spans dropped in all: (\d+)", log)
    return sum(int(n) for n in found)


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user and system) used so far by process ``pid`` and its descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
    return total


class OtlpSink:
    """An OTLP/HTTP endpoint on 127.0.0.1 that takes every export and answers it at once."""

    def __init__(self) -> None:
        sink = self
        self.exports = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.exports += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Scraper:
    """Reads ``url`` once a second in a thread, as a Prometheus server would."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        """Scrape until stopped, checking each answer."""
        with httpx2.Client() as client:
            while not self.stopping.wait(1):
                client.get(self.url).raise_for_status()

    def start(self) -> None:
        """Start scraping."""
        self.thread.start()

    def stop(self) -> None:
        """Stop scraping."""
        self.stopping.set()
        self.thread.join()


def faststream_run(bootstrap: str, commands: int, pings: int) -> tuple[float, list[float]]:
    """Throughput and ping latencies of the same echo written with FastStream (aiokafka).

    Its handler does what the runtime's echo does per command: decode the envelope,
    build the result envelope, encode it; FastStream publishes it to the evt topic.
    """
    if KafkaBroker is None:
        raise SystemExit("the FastStream contender needs: pip install -e '.[bench]'")
    node = f"fs-{uuid.uuid4().hex[:8]}"
    create(bootstrap, [cmd_topic(node), evt_topic(node)])
    produce_commands(bootstrap, node, commands, keys=KEY_COUNT[0], **PRODUCER)
    # Its defaults (linger 0: each result is confirmed before the next command, so a
    # linger would only add to every message). log_level is that of its per-message
    # access log: DEBUG keeps it quiet.
    broker = KafkaBroker(bootstrap, log_level=logging.DEBUG)

    @broker.subscriber(
        cmd_topic(node), group_id=f"fs-{node}", auto_offset_reset="earliest", max_records=500
    )
    @broker.publisher(evt_topic(node))
    async def echo(message: KafkaMessage) -> bytes:
        command = decode_envelope(message.body)
        return encode_envelope(result_of(command, command.payload))

    async def run() -> tuple[float, list[float]]:
        async with broker:
            await broker.start()
            with outputs(bootstrap, evt_topic(node)) as count:
                rate = await asyncio.to_thread(steady_rate, count, commands)
            client = PingClient(bootstrap, node, evt_topic(node))
            latencies = [
                await asyncio.to_thread(client.ping, runtime_answers) for _ in range(pings)
            ]
            client.close()
        return rate, latencies

    return asyncio.run(run())


def faststream_batch_run(bootstrap: str, commands: int, pings: int) -> tuple[float, list[float]]:
    """The same echo in FastStream's fastest documented form.

    A batch subscriber (up to 500 records per call) and one ``publish_batch`` of the
    results without waiting for the broker's confirmation (``no_confirm=True``). Its
    default ack policy commits a batch's offsets before the handler runs: at most
    once, where the runtime and the bare pipe are at least once.
    """
    if KafkaBroker is None:
        raise SystemExit("the FastStream contender needs: pip install -e '.[bench]'")
    node = f"fsb-{uuid.uuid4().hex[:8]}"
    create(bootstrap, [cmd_topic(node), evt_topic(node)])
    produce_commands(bootstrap, node, commands, keys=KEY_COUNT[0], **PRODUCER)
    # aiokafka's batch buffer holds 16 KB by default (about 34 results): room for 500
    broker = KafkaBroker(bootstrap, log_level=logging.DEBUG, max_batch_size=1024 * 1024)

    @broker.subscriber(
        cmd_topic(node),
        group_id=f"fs-{node}",
        auto_offset_reset="earliest",
        batch=True,
        max_records=500,
    )
    async def echo(commands: list[OnexEnvelope]) -> None:
        # FastStream's own decoding: JSON bodies validated into the annotated model
        results = [encode_envelope(result_of(c, c.payload)) for c in commands]
        await broker.publish_batch(*results, topic=evt_topic(node), no_confirm=True)

    async def run() -> tuple[float, list[float]]:
        async with broker:
            await broker.start()
            with outputs(bootstrap, evt_topic(node)) as count:
                rate = await asyncio.to_thread(steady_rate, count, commands)
            client = PingClient(bootstrap, node, evt_topic(node))
            latencies = [
                await asyncio.to_thread(client.ping, runtime_answers) for _ in range(pings)
            ]
            client.close()
        return rate, latencies

    return asyncio.run(run())


QUIX = "quixstreams==3.28.1"
QUIX_VENV = Path(__file__).resolve().parent.parent / ".cache" / "bench-peers" / "quixstreams-3.28.1"
"""Quix Streams runs in a venv of its own: it pins older confluent-kafka and pydantic."""
QUIX_EOS_PINGS = 5
"""Pings of the exactly-once fold: each waits for Quix's commit (every 5 s by default)."""


def quix_python() -> Path:
    """The Python of Quix Streams' venv, made on first use (from the package registry)."""
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        print(f"making {QUIX_VENV} with {QUIX} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", QUIX], check=True)
    return python


def quix_run(bootstrap: str, commands: int, pings: int, mode: str) -> tuple[float, list[float]]:
    """Throughput and ping latencies of the echo as a Quix Streams app (``peers/quix_app.py``).

    Exactly once, until its group has committed every command (at Quix's commit
    interval, 5 s by default).
    """
    node = f"quix-{uuid.uuid4().hex[:8]}"
    group = f"quix-{node}"
    source, sink = cmd_topic(node), evt_topic(node)
    create(bootstrap, [source, sink])
    produce_commands(
        bootstrap, node, commands, fold=mode.startswith("fold"), keys=KEY_COUNT[0], **PRODUCER
    )
    script = Path(__file__).resolve().parent / "peers" / "quix_app.py"
    with tempfile.TemporaryDirectory(prefix="quix-state-") as state_dir:
        app = subprocess.Popen(
            [
                str(quix_python()),
                str(script),
                bootstrap,
                source,
                sink,
                group,
                mode,
                state_dir,
                *([] if QUIX_COMMIT_INTERVAL[0] is None else [str(QUIX_COMMIT_INTERVAL[0])]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            with (
                outputs(bootstrap, sink) as answered,
                commits(bootstrap, group, source) as committed,
            ):
                if mode == "fold-eos":
                    rate = steady_rate(committed, commands, started=answered)
                else:
                    rate = steady_rate(answered, commands)
            if mode == "fold-eos":
                pings = min(pings, QUIX_EOS_PINGS)
            client = PingClient(bootstrap, node, sink)
            latencies = [client.ping(runtime_answers) for _ in range(pings)]
            client.close()
        finally:
            app.send_signal(signal.SIGTERM)
            try:
                _, stderr = app.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                app.kill()
                _, stderr = app.communicate()
        if app.returncode not in (0, -signal.SIGTERM):
            print(stderr.decode(errors="replace")[-2000:], file=sys.stderr)
    if mode.startswith("fold"):
        # counted once the app has stopped: Quix writes its changelog at each checkpoint
        # (its commit, every 5 s), and at its stop the last one
        with outputs(bootstrap, f"changelog__{group}--{source}--default") as changelog:
            CHANGELOG[0] = changelog() / commands
    return rate, latencies


TRANSACTION_INTERVAL: list[float | None] = [None]
"""``--transaction-interval``: runtime-eos's ``delivery.transaction_interval_s`` (default 0.1)."""
QUIX_COMMIT_INTERVAL: list[float | None] = [None]
"""``--quix-commit-interval``: the Quix apps' ``commit_interval`` (``None``: Quix's, 5 s)."""


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values``, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


CONTENDERS = {
    "bare": "bare kafka-python pipe",
    "bare-codec": "bare pipe + envelope codec",
    "bare-confluent": "bare confluent-kafka pipe",
    "bare-confluent-codec": "bare confluent pipe + codec",
    "runtime-confluent": "onex runtime on confluent",
    "runtime": "onex runtime (echo)",
    "runtime-scraped": "runtime, /metrics read at 1 Hz",
    "runtime-eos": "runtime, delivery exactly_once",
    "runtime-confluent-eos": "runtime on confluent, exactly_once",
    "faststream": "FastStream (aiokafka) echo",
    "faststream-batch": "FastStream, batch, no confirm",
    "runtime-confluent-2p": "runtime on confluent, --workers 2",
    "runtime-confluent-traced-1pct": "runtime on confluent, traced 1 %",
    "runtime-confluent-traced": "runtime on confluent, traced 100 %",
    "runtime-confluent-fold": "runtime on confluent, a fold",
    "runtime-confluent-fold-eos": "runtime on confluent, fold, EOS",
    "runtime-confluent-fold-disk": "runtime on confluent, fold, on disk",
    "runtime-confluent-fold-disk-eos": "runtime on confluent, fold, on disk, EOS",
    "runtime-fold": "runtime (kafka-python), a fold",
    "runtime-fold-eos": "runtime (kafka-python), fold, EOS",
    "quix": "Quix Streams, stateless apply",
    "quix-fold": "Quix Streams, stateful fold",
    "quix-fold-eos": "Quix Streams, fold, exactly-once",
}


FOLD_RATIOS = (
    (
        "runtime-confluent-fold/runtime-confluent",
        "fold/echo at least once, confluent (target >= 0.7)",
    ),
    ("runtime-confluent-fold-eos/runtime-confluent-eos", "fold/echo exactly once, confluent"),
    (
        "runtime-confluent-fold-eos/runtime-confluent",
        "fold exactly once/echo at least once, confluent (target >= 0.6)",
    ),
    ("runtime-confluent-fold/quix-fold", "fold on confluent/Quix fold (target >= 1.0)"),
    (
        "runtime-confluent-fold-eos/quix-fold-eos",
        "fold EOS on confluent/Quix fold EOS (target >= 1.0)",
    ),
    ("runtime-confluent-fold-disk/runtime-confluent-fold", "fold on disk/in memory, confluent"),
    (
        "runtime-confluent-fold-disk-eos/runtime-confluent-fold-eos",
        "fold on disk/in memory, exactly once, confluent",
    ),
    ("runtime-fold/runtime", "fold/echo at least once, kafka-python"),
    ("runtime-fold/quix-fold", "fold on kafka-python/Quix fold"),
    ("runtime-fold-eos/quix-fold-eos", "fold EOS on kafka-python/Quix fold EOS"),
)
"""The reducer's figures: numerator/denominator contenders, and what the ratio says."""

TRACING_RATIOS = (
    ("runtime-confluent-traced-1pct/runtime-confluent", "traced 1 %/off (target >= 0.95)"),
    ("runtime-confluent-traced/runtime-confluent", "traced 100 %/off"),
)
"""Tracing's cost: numerator/denominator contenders, and what the ratio says."""

PEERS = ("quix", "quix-fold", "quix-fold-eos")
"""The Quix Streams contenders, each set against both runtimes in the report."""


def run_one(name: str, bootstrap: str, commands: int, pings: int) -> tuple[float, list[float]]:
    """One run of contender ``name``: its throughput and ping latencies."""
    if name == "bare":
        return bare_run(bootstrap, commands, pings)
    if name == "bare-codec":
        return bare_run(bootstrap, commands, pings, codec=True)
    if name == "bare-confluent":
        return bare_confluent_run(bootstrap, commands, pings)
    if name == "bare-confluent-codec":
        return bare_confluent_run(bootstrap, commands, pings, codec=True)
    if name == "runtime-confluent":
        return runtime_run(bootstrap, commands, pings, "confluent")
    if name == "runtime-scraped":
        return runtime_run(bootstrap, commands, pings, scraped=True)
    if name == "runtime-eos":
        return runtime_run(bootstrap, commands, pings, exactly_once=True)
    if name == "runtime-confluent-eos":
        return runtime_run(bootstrap, commands, pings, "confluent", exactly_once=True)
    if name == "faststream":
        return faststream_run(bootstrap, commands, pings)
    if name == "faststream-batch":
        return faststream_batch_run(bootstrap, commands, pings)
    if name == "runtime-confluent-2p":
        return runtime_run(bootstrap, commands, pings, "confluent", workers=2)
    if name.startswith("runtime-confluent-traced"):
        ratio = 0.01 if name.endswith("-1pct") else 1.0
        return runtime_run(bootstrap, commands, pings, "confluent", traced=ratio)
    if name.startswith("runtime") and "fold" in name:
        client = "confluent" if "confluent" in name else "kafka-python"
        eos = name.endswith("-eos")
        disk = "-disk" in name
        return runtime_run(
            bootstrap, commands, pings, client, exactly_once=eos, fold=True, disk=disk
        )
    if name == "quix":
        return quix_run(bootstrap, commands, pings, "stateless")
    if name.startswith("quix-"):
        return quix_run(bootstrap, commands, pings, name.removeprefix("quix-"))
    return runtime_run(bootstrap, commands, pings)


def main() -> None:
    """Run the contenders RUNS times, interleaved, and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=50_000)
    parser.add_argument("--pings", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--only", choices=list(CONTENDERS), nargs="+", default=list(CONTENDERS))
    parser.add_argument("--record", action="store_true", help="store medians for the plot")
    parser.add_argument(
        "--keys", type=int, default=KEYS, help="record keys the commands are spread over"
    )
    parser.add_argument(
        "--transaction-interval",
        type=float,
        default=None,
        help="delivery.transaction_interval_s of the runtime-eos contender (default 0.1)",
    )
    parser.add_argument(
        "--quix-commit-interval",
        type=float,
        default=None,
        help="the Quix contenders' commit_interval in seconds (default Quix's own, 5)",
    )
    add_json_flag(parser)
    add_gc_flag(parser)
    args = parser.parse_args()
    GC[0] = apply_gc(args)
    TRANSACTION_INTERVAL[0] = args.transaction_interval
    QUIX_COMMIT_INTERVAL[0] = args.quix_commit_interval
    KEY_COUNT[0] = args.keys
    rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in args.only}
    cpu: dict[str, list[float]] = {name: [] for name in args.only}
    dropped: dict[str, list[int]] = {name: [] for name in args.only}
    changelog: dict[str, list[float]] = {name: [] for name in args.only}
    with broker(args.bootstrap) as bootstrap:
        for run in range(args.runs):
            for name in args.only:
                HOST_CPU[0] = SPANS_DROPPED[0] = CHANGELOG[0] = None
                try:
                    rate, lat = run_one(name, bootstrap, args.commands, args.pings)
                except TimeoutError as exc:  # kafka-python's hung poll (docs/kafka.md)
                    print(f"run {run + 1} {name}: stalled ({exc}); running it again", flush=True)
                    rate, lat = run_one(name, bootstrap, args.commands, args.pings)
                rows[name].append((rate, percentile(lat, 0.5), percentile(lat, 0.99)))
                host_cpu = ""
                if HOST_CPU[0] is not None:
                    cpu[name].append(HOST_CPU[0])
                    host_cpu = f"   host CPU {HOST_CPU[0]:.1f} µs/cmd"
                if CHANGELOG[0] is not None:
                    changelog[name].append(CHANGELOG[0])
                    host_cpu += f"   changelog {CHANGELOG[0]:.2f} records/cmd"
                if SPANS_DROPPED[0] is not None:
                    dropped[name].append(SPANS_DROPPED[0])
                    host_cpu += f"   spans dropped {SPANS_DROPPED[0]:,}"
                print(
                    f"run {run + 1} {name:10} {rate:>9,.0f} cmd/s   ping p50 "
                    f"{rows[name][-1][1]:.2f} ms  p99 {rows[name][-1][2]:.2f} ms{host_cpu}",
                    flush=True,
                )
    med = {n: [statistics.median(r[i] for r in rows[n]) for i in range(3)] for n in rows}
    print(f"\nmedians of {args.runs} runs, {args.commands:,} commands, {args.pings} pings:")
    if QUIX_COMMIT_INTERVAL[0] is not None:
        print(
            f"(the Quix contenders ran at commit_interval {QUIX_COMMIT_INTERVAL[0]:g} s, not 5 s)"
        )
    for name, (rate, p50, p99) in med.items():
        print(f"{CONTENDERS[name]:28} {rate:>9,.0f} cmd/s   p50 {p50:.2f} ms  p99 {p99:.2f} ms")
    if "bare" in med and "runtime" in med:
        ratio = med["runtime"][0] / med["bare"][0]
        added = med["runtime"][1] - med["bare"][1]
        print(f"throughput ratio runtime/bare: {ratio:.2f}  (target >= 0.90)")
        print(f"latency added at p50: {added:+.2f} ms  (target <= +0.5 ms)")
    for peer in ("bare-codec", "faststream", "faststream-batch"):
        if peer in med and "runtime" in med:
            print(f"runtime/{CONTENDERS[peer]} throughput: {med['runtime'][0] / med[peer][0]:.2f}")
    if "runtime-confluent" in med:
        for peer in ("bare-confluent", "bare-confluent-codec", "bare", *PEERS):
            if peer in med:
                ratio = med["runtime-confluent"][0] / med[peer][0]
                print(f"runtime on confluent/{CONTENDERS[peer]} throughput: {ratio:.2f}")
    for peer in PEERS:
        if peer in med and "runtime" in med:
            print(f"runtime/{CONTENDERS[peer]} throughput: {med['runtime'][0] / med[peer][0]:.2f}")
    if "bare-confluent-codec" in med and "quix" in med:
        ratio = med["bare-confluent-codec"][0] / med["quix"][0]
        print(f"{CONTENDERS['bare-confluent-codec']}/{CONTENDERS['quix']} throughput: {ratio:.2f}")
    if "runtime-confluent" in med and "runtime-confluent-2p" in med:
        ratio = med["runtime-confluent-2p"][0] / med["runtime-confluent"][0]
        print(f"--workers 2 / 1 process (confluent) throughput: {ratio:.2f}")
    if "runtime-scraped" in med and "runtime" in med:
        ratio = med["runtime-scraped"][0] / med["runtime"][0]
        print(f"listener and metrics on/off throughput: {ratio:.3f}  (target >= 0.97)")
    for name, line in FOLD_RATIOS:
        numerator, denominator = name.split("/")
        if numerator in med and denominator in med:
            # run by run too: the two of a run ran minutes apart, the medians' may not
            pairs = ", ".join(
                f"{a[0] / b[0]:.2f}"
                for a, b in zip(rows[numerator], rows[denominator], strict=True)
            )
            print(f"{line}: {med[numerator][0] / med[denominator][0]:.2f}  (run by run: {pairs})")
    if "runtime-eos" in med and "runtime" in med:
        ratio = med["runtime-eos"][0] / med["runtime"][0]
        print(f"exactly_once/at_least_once throughput: {ratio:.2f}  (target >= 0.70)")
    if "runtime-confluent-eos" in med and "runtime-confluent" in med:
        ratio = med["runtime-confluent-eos"][0] / med["runtime-confluent"][0]
        print(f"on confluent, exactly_once/at_least_once throughput: {ratio:.2f}")
    for name, line in TRACING_RATIOS:
        numerator, denominator = name.split("/")
        if numerator in med and denominator in med:
            paired = statistics.median(
                a[0] / b[0] for a, b in zip(rows[numerator], rows[denominator], strict=True)
            )
            print(
                f"{line}: {med[numerator][0] / med[denominator][0]:.3f} "
                f"(median of the runs' own ratios, each run's pair side by side: {paired:.3f})"
            )
    host_cpu = {n: statistics.median(c) for n, c in cpu.items() if c}
    for name, per_command in host_cpu.items():
        print(f"host CPU per command, {CONTENDERS[name]}: {per_command:.1f} µs (median)")
    for name, counts in dropped.items():
        if counts:
            print(f"spans dropped, {CONTENDERS[name]}: {statistics.median(counts):,.0f} (median)")
    per_command = {n: statistics.median(c) for n, c in changelog.items() if c}
    for name, records in per_command.items():
        print(f"changelog records per command, {CONTENDERS[name]}: {records:.2f} (median)")
    for name, _ in TRACING_RATIOS:
        numerator, denominator = name.split("/")
        if numerator in host_cpu and denominator in host_cpu:
            added = host_cpu[numerator] / host_cpu[denominator] - 1
            print(
                f"host CPU per command, {numerator.removeprefix('runtime-confluent-')}: "
                f"{added:+.1%} against off"
            )
    if args.json:
        figures: dict[str, float | int] = {"runs": args.runs, "commands": args.commands}
        figures["keys"] = KEY_COUNT[0]
        for name, records in per_command.items():
            figures[f"{name.replace('-', '_')}_changelog_per_command"] = records
        for name, (rate, p50, p99) in med.items():
            key = name.replace("-", "_")
            figures |= {f"{key}_per_s": rate, f"{key}_p50_ms": p50, f"{key}_p99_ms": p99}
        if "bare" in med and "runtime" in med:
            figures["ratio"] = med["runtime"][0] / med["bare"][0]
            figures["p50_added_ms"] = med["runtime"][1] - med["bare"][1]
        figures["gc_threshold"] = GC[0] or 0
        if QUIX_COMMIT_INTERVAL[0] is not None:  # the Quix figures are not its defaults
            figures["quix_commit_interval_s"] = QUIX_COMMIT_INTERVAL[0]
        for peer in ("bare-confluent", "bare-confluent-codec", "bare", *PEERS):
            if "runtime-confluent" in med and peer in med:
                key = f"runtime_confluent_vs_{peer.replace('-', '_')}"
                figures[key] = med["runtime-confluent"][0] / med[peer][0]
        for peer in ("bare-codec", "faststream", "faststream-batch", *PEERS):
            if peer in med and "runtime" in med:
                figures[f"runtime_vs_{peer.replace('-', '_')}"] = med["runtime"][0] / med[peer][0]
        if "bare-confluent-codec" in med and "quix" in med:
            codec_pipe = med["bare-confluent-codec"][0]
            figures["bare_confluent_codec_vs_quix"] = codec_pipe / med["quix"][0]
        if "runtime-confluent" in med and "runtime-confluent-2p" in med:
            figures["workers_2_vs_1"] = med["runtime-confluent-2p"][0] / med["runtime-confluent"][0]
        if "runtime-scraped" in med and "runtime" in med:
            figures["scraped_vs_runtime"] = med["runtime-scraped"][0] / med["runtime"][0]
        for name, per_command in host_cpu.items():
            figures[f"{name.replace('-', '_')}_host_cpu_us"] = per_command
        for name, counts in dropped.items():
            if counts:
                figures[f"{name.replace('-', '_')}_spans_dropped"] = statistics.median(counts)
        for name, _ in (*TRACING_RATIOS, *FOLD_RATIOS):
            numerator, denominator = name.split("/")
            if numerator in med and denominator in med:
                key = f"{numerator}_vs_{denominator}_paired".replace("-", "_")
                figures[key] = statistics.median(
                    a[0] / b[0] for a, b in zip(rows[numerator], rows[denominator], strict=True)
                )
        for name, _ in TRACING_RATIOS:
            numerator, denominator = name.split("/")
            if numerator in host_cpu and denominator in host_cpu:
                key = f"{numerator}_host_cpu_vs_{denominator}".replace("-", "_")
                figures[key] = host_cpu[numerator] / host_cpu[denominator]
        for name, _ in (*FOLD_RATIOS, *TRACING_RATIOS):
            numerator, denominator = name.split("/")
            if numerator in med and denominator in med:
                key = f"{numerator}_vs_{denominator}".replace("-", "_")
                figures[key] = med[numerator][0] / med[denominator][0]
        if "runtime-eos" in med and "runtime" in med:
            figures["exactly_once_vs_at_least_once"] = med["runtime-eos"][0] / med["runtime"][0]
        if "runtime-confluent-eos" in med and "runtime-confluent" in med:
            figures["confluent_exactly_once_vs_at_least_once"] = (
                med["runtime-confluent-eos"][0] / med["runtime-confluent"][0]
            )
        print_json(figures)
    if args.record:
        record(
            "kafka_echo",
            {
                "runs": args.runs,
                "commands": args.commands,
                **{
                    f"{name}_{what}": value
                    for name, figures in med.items()
                    for what, value in zip(("cmd_s", "p50_ms", "p99_ms"), figures, strict=True)
                },
            },
        )


if __name__ == "__main__":
    main()
