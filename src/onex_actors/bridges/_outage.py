"""``BrokerOutage``: one line when no broker answers, one when they answer again.

While no bootstrap server accepts a connection, the Kafka clients log a refused
connection every few hundred milliseconds: a host on kafka-python logged 123
WARNING/ERROR lines in a 20 s broker outage, one on librdkafka about 500. Both bridges
hand their client's log records to ``client_says`` (a filter on the client's loggers).
The first connection failure it recognises makes it probe the bootstrap servers (an
ApiVersions request on a plaintext listener, a TCP connection over TLS); when none
answers, the outage starts: said once, again at most every
``repeat_s`` while it lasts (a probe thread, four a second), and once when a
server accepts again and the client has said nothing of it for ``settle_s``, with how
long it lasted. The clients' own lines about it go to
DEBUG meanwhile, and for ``recovering_s`` after it ends too, while the client's
reconnect backoff catches up with a server that answers again (kafka-python says "No
node available for metadata refresh" a second or two after the end). A failure while
some server still accepts (one broker of several away), outside that time, is no
outage: the client's line passes as it is.
"""

from __future__ import annotations

import logging
import re
import socket
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

__all__ = [
    "CONNECTION_FAILURE",
    "BrokerOutage",
    "bootstrap_accepts",
    "route_client_logs",
    "watching_outages",
]

logger = logging.getLogger("onex_actors.kafka")

CONNECTION_FAILURE = re.compile(
    r"ECONNREFUSED|Connection refused|socket disconnected|Connection lost|Connection failed"
    r"|No node available|Metadata refresh: failed|Unable to bootstrap|Marking the coordinator"
    r" dead|Error sending \w+ to node|NodeNotReady|KafkaConnectionError|Connect to \S+ failed"
    r"|brokers are down|Broker transport failure|Disconnected|Connection reset|Broken pipe",
    re.IGNORECASE,
)
"""What the clients say when they cannot reach a broker (kafka-python, librdkafka)."""


_PROBE_ID = 0x6F6E6578
"""The correlation id of a probe's ApiVersions request."""


def bootstrap_accepts(bootstrap_servers: str, *, plaintext: bool, timeout_s: float = 0.5) -> bool:
    """Whether some server of ``bootstrap_servers`` answers.

    On a plaintext listener (``PLAINTEXT``, ``SASL_PLAINTEXT``) that is a Kafka answer:
    an ApiVersions request (allowed before any login) answered within ``timeout_s``. A
    broker shutting down still completes TCP handshakes but answers nothing, so an
    accepted connection alone would end an outage too early. Over TLS it is the
    connection alone (a request would need the handshake).
    """
    for server in (s.strip() for s in bootstrap_servers.split(",")):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout_s) as conn:
                if not plaintext or _answers_api_versions(conn, timeout_s):
                    return True
        except (OSError, ValueError):
            continue
    return False


def _answers_api_versions(conn: socket.socket, timeout_s: float) -> bool:
    client = b"onex-probe"
    request = struct.pack(">hhih", 18, 0, _PROBE_ID, len(client)) + client
    conn.settimeout(timeout_s)
    conn.sendall(struct.pack(">i", len(request)) + request)
    head = b""
    while len(head) < 8:
        chunk = conn.recv(8 - len(head))
        if not chunk:
            return False
        head += chunk
    return bool(struct.unpack(">ii", head)[1] == _PROBE_ID)


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


class BrokerOutage:
    """Whether the brokers of one bus answer, said in as few lines as the outage needs."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        plaintext: bool = True,
        repeat_s: float = 60.0,
        probe_every_s: float = 0.25,
        settle_s: float = 3.0,
        recovering_s: float = 30.0,
        probe: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        watch_in_thread: bool = True,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.repeat_s = repeat_s
        self.probe_every_s = probe_every_s
        self.settle_s = settle_s
        """How long the client must have said nothing of an outage, a server answering,
        before it counts as over."""
        self.recovering_s = recovering_s
        """How long after an outage the client's connection failures, a server
        answering, are its reconnects catching up (DEBUG) rather than news."""
        self._ended_at: float | None = None
        self._failed_at = 0.0
        self._probe = probe or (lambda: bootstrap_accepts(bootstrap_servers, plaintext=plaintext))
        self._clock = clock
        self._lock = threading.Lock()
        self._probing = threading.Lock()
        self._since: float | None = None
        self._since_wall: datetime | None = None
        self._said_at = 0.0
        self._checked_at: float | None = None
        self._closed = threading.Event()
        self._watch_in_thread = watch_in_thread
        """Probe every ``probe_every_s`` in a thread during an outage (else: ``check``)."""
        self.outages = 0
        """Outages seen so far."""

    @property
    def down_for_s(self) -> float | None:
        """How long no broker has answered, or None while they do."""
        since = self._since
        return None if since is None else self._clock() - since

    def describe(self) -> str | None:
        """Say what is down since when, or None while the brokers answer."""
        down_for = self.down_for_s
        if down_for is None or self._since_wall is None:
            return None
        return (
            f"no Kafka broker answers at {self.bootstrap_servers} since "
            f"{self._since_wall:%H:%M:%S} UTC ({_duration(down_for)})"
        )

    def client_says(self, message: str) -> bool:
        """Take one line of the client's; return whether it belongs to an outage (say it at DEBUG).

        During an outage every line does (heartbeats, coordinators, metadata: all come
        of it). Outside one, a connection failure makes it probe the bootstrap servers
        (at most once every ``probe_every_s``); none answering starts the outage, and a
        server answering within ``recovering_s`` of the last outage's end makes the line
        that outage's aftermath.
        """
        with self._lock:
            if self._since is not None:  # whatever the client says now comes of it
                self._failed_at = self._clock()
                return True
        if not CONNECTION_FAILURE.search(message):
            return False
        with self._probing:  # one probe at a time; a line meanwhile waits for its answer
            with self._lock:
                now = self._clock()
                if self._since is not None:
                    self._failed_at = now
                    return True
                recovering = self._ended_at is not None and now - self._ended_at < self.recovering_s
                if self._checked_at is not None and now - self._checked_at < self.probe_every_s:
                    return recovering  # a server answered a moment ago: no outage
                self._checked_at = now
            if self._probe():
                return recovering
            with self._lock:
                if self._closed.is_set():
                    return False
                now = self._clock()
                self._since, self._said_at, self._failed_at = now, now, now
                self.outages += 1
                self._since_wall = datetime.now(UTC)
        logger.warning(
            "Kafka at %s unreachable: no bootstrap server answers (the client "
            "said: %s); still trying, the host keeps what it holds and goes on when a "
            "broker answers (the client's own lines about it are at DEBUG)",
            self.bootstrap_servers,
            message[:200],
        )
        if self._watch_in_thread:
            threading.Thread(target=self._watch, name="onex-broker-outage", daemon=True).start()
        return True

    def check(self) -> None:
        """Probe once: end an outage whose brokers answer, repeat the line when it is due."""
        with self._lock:
            if self._since is None:
                return
        answers = self._probe()
        with self._lock:
            since = self._since
            if since is None:
                return
            now = self._clock()
            answers = answers and now - self._failed_at >= self.settle_s
            repeat = not answers and now - self._said_at >= self.repeat_s
            if answers:
                self._since = self._since_wall = None
                self._ended_at = now
            elif repeat:
                self._said_at = now
        if answers:
            logger.warning(
                "Kafka at %s answers again, after %s without a broker",
                self.bootstrap_servers,
                _duration(now - since),
            )
        elif repeat:
            logger.warning(
                "Kafka at %s still unreachable after %s; still trying",
                self.bootstrap_servers,
                _duration(now - since),
            )

    def close(self) -> None:
        """Stop watching (the bus closes); an outage under way is not said to end.

        The clients' lines no longer reach it: a closed watch in an outage would
        otherwise keep taking another bus's lines as part of it.
        """
        self._closed.set()
        _WATCHES.discard(self)

    def _watch(self) -> None:
        while not self._closed.wait(self.probe_every_s):
            self.check()
            if self._since is None:
                return


_WATCHES: weakref.WeakSet[BrokerOutage] = weakref.WeakSet()
_ROUTED: set[str] = set()
_ROUTING = threading.Lock()


class _ClientLogFilter(logging.Filter):
    """Hands a client's WARNING-and-above lines to every open ``BrokerOutage``.

    A line one of them takes as part of an outage is re-levelled to DEBUG, and dropped
    unless its logger lets DEBUG through; so are the lines in ``_IGNORED_BY_THE_CLIENT``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if message.endswith(_IGNORED_BY_THE_CLIENT):
            return _demoted(record)
        taken = False
        for watch in list(_WATCHES):
            taken = watch.client_says(message) or taken
        return _demoted(record) if taken else True


_IGNORED_BY_THE_CLIENT = (
    "failed Cancelled",
    "No broker metadata found in MetadataResponse -- ignoring.",
    "Other pollers will time out.",
)
"""Endings of kafka-python lines that report nothing a user can act on: a request the
closing client cancelled itself (logged as an ERROR), the empty metadata a broker
shutting down answers with, which the client drops and asks again (a WARNING; when no
broker answers after it, the outage is said), and a step of the client's own network
loop over its 0.1 s budget ("It is blocking the event loop", kafka-python 3's
diagnostic for its developers: on a busy machine its thread waits for the interpreter
lock that the host's loop holds)."""


def _demoted(record: logging.LogRecord) -> bool:
    """Re-level ``record`` to DEBUG; return whether its logger lets DEBUG through."""
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_FILTER = _ClientLogFilter()


def route_client_logs(watch: BrokerOutage, logger_names: Iterable[str]) -> None:
    """Route the named loggers' lines (and those of their existing children) to ``watch``.

    A logger's filter sees only its own records, so every logger a client writes
    through gets the filter; ``watch`` hears them while it lives.
    """
    _WATCHES.add(watch)
    with _ROUTING:
        names = set(logger_names)
        known = list(logging.Logger.manager.loggerDict)
        names |= {name for name in known for prefix in list(names) if name.startswith(prefix + ".")}
        for name in names - _ROUTED:
            logging.getLogger(name).addFilter(_FILTER)
            _ROUTED.add(name)


@contextmanager
def watching_outages(
    bootstrap_servers: str, logger_names: Iterable[str], *, security_protocol: str
) -> Iterator[BrokerOutage]:
    """Watch the brokers of one bus through its client's ``logger_names`` while it is open."""
    plaintext = security_protocol.upper() in ("PLAINTEXT", "SASL_PLAINTEXT")
    watch = BrokerOutage(bootstrap_servers, plaintext=plaintext)
    route_client_logs(watch, logger_names)
    try:
        yield watch
    finally:
        watch.close()
