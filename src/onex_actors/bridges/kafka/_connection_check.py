"""Why a client cannot connect: one bootstrap, watched, instead of a 30 s "Unable to bootstrap".

kafka-python retries a refused TLS handshake or SASL login until its bootstrap times out
and then says only that it could not bootstrap; librdkafka logs the same and keeps
trying. ``connection_failure`` connects once as the clients will and returns the first
definitive failure (a certificate not trusted, credentials refused) as soon as it is
seen, read from the exceptions kafka-python logs while it bootstraps (its records stay
out of the process log meanwhile: the caller reports the failure once).
"""

from __future__ import annotations

import logging
import ssl
import threading
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import attrs
from kafka import KafkaAdminClient
from kafka.errors import (
    AuthorizationError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    UnsupportedSaslMechanismError,
)

__all__ = ["ConnectionFailure", "connection_failure"]

_HANDSHAKE = "Handshake failed: "
_LOST = "Connection lost: "
_DROPPED_LOGINS = 3


@attrs.frozen
class ConnectionFailure:
    """Why the brokers refused the connection."""

    kind: Literal["tls", "sasl", "unreachable"]
    detail: str


class _FailureWatch(logging.Handler):
    """Catches the exceptions kafka-python logs while one client bootstraps."""

    def __init__(self, io_thread: str) -> None:
        super().__init__(logging.DEBUG)
        self.io_thread = io_thread
        """kafka-python's network thread of the watched client (``kafka-io-<client_id>``)."""
        self.failure: ConnectionFailure | None = None
        self.last_error: str | None = None
        self.dropped_logins = 0
        self.decided = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.threadName != self.io_thread:
            return
        args = record.args if isinstance(record.args, tuple) else ()
        errors = [a for a in args if isinstance(a, BaseException)]
        if record.exc_info and record.exc_info[1] is not None:
            errors.append(record.exc_info[1])
        for error in errors:
            if not isinstance(error, KafkaTimeoutError):
                self.last_error = f"{type(error).__name__}: {error}"
            self._decide(_definitive(error))
        if record.getMessage().split(": ", 1)[-1].startswith(_LOST):
            self._count_dropped_login(args)

    def _count_dropped_login(self, args: tuple[object, ...]) -> None:
        """Count connections dropped after the TLS handshake and ApiVersions, in SASL.

        Kafka closes the connection when it refuses a SASL login; kafka-python reads the
        refusal first only now and then, and otherwise sees "socket disconnected". Three
        drops in a row at that step are taken as refused credentials.
        """
        connection = args[0] if args else None
        versions_known = getattr(connection, "broker_version_data", None) is not None
        sasl = getattr(connection, "sasl_enabled", False) is True
        self.dropped_logins = self.dropped_logins + 1 if versions_known and sasl else 0
        if self.dropped_logins >= _DROPPED_LOGINS:
            self._decide(
                ConnectionFailure(
                    "sasl",
                    f"the broker closed the connection during the SASL login "
                    f"{self.dropped_logins} times in a row, as it does when it refuses "
                    "the credentials",
                )
            )

    def _decide(self, failure: ConnectionFailure | None) -> None:
        if failure is not None and self.failure is None:
            self.failure = failure
            self.decided.set()


def _definitive(error: BaseException) -> ConnectionFailure | None:
    """Return a failure that retrying cannot mend, or None."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return ConnectionFailure("tls", cause.verify_message or str(cause))
        if isinstance(cause, ssl.SSLError):
            return ConnectionFailure("tls", str(cause))
        cause = cause.__cause__ or cause.__context__
    # kafka-python 3.0 re-raises a failed handshake as a KafkaConnectionError, by text
    if isinstance(error, KafkaConnectionError) and str(error).startswith(_HANDSHAKE):
        return ConnectionFailure("tls", str(error).removeprefix(_HANDSHAKE))
    if isinstance(
        error, SaslAuthenticationFailedError | UnsupportedSaslMechanismError | AuthorizationError
    ):
        return ConnectionFailure("sasl", _message(error))
    return None


def _message(error: BaseException) -> str:
    """Return the broker's words, without kafka-python's ``[Error N] Name: Name:`` prefixes."""
    text = str(error.args[0]) if error.args else str(error)
    for prefix in ("SaslAuthenticationFailedError: ", "AuthorizationError: "):
        text = text.removeprefix(prefix)
    return text


def connection_failure(
    client_config: Mapping[str, Any], *, timeout_s: float = 15.0
) -> ConnectionFailure | None:
    """Connect once with ``client_config`` (kafka-python keywords); None when it works.

    Blocking: call it in a thread. Returns at the first definitive failure, else once
    the bootstrap succeeds or ``timeout_s`` passes (then kind ``unreachable``).
    """
    client_id = f"onex-check-{uuid.uuid4().hex[:8]}"
    watch = _FailureWatch(f"kafka-io-{client_id}")
    outcome: list[ConnectionFailure | None] = []

    def bootstrap() -> None:
        try:
            admin = KafkaAdminClient(
                **client_config, bootstrap_timeout_ms=int(timeout_s * 1000), client_id=client_id
            )
        except (KafkaError, OSError, ValueError) as exc:
            outcome.append(watch.failure or ConnectionFailure("unreachable", _reason(exc, watch)))
        else:
            admin.close()
            outcome.append(None)
        finally:
            _unwatch(watch)
        watch.decided.set()

    _watch(watch)
    # after a definitive failure the thread goes on to its own timeout; it holds only
    # its connection attempts, and is a daemon
    threading.Thread(target=bootstrap, name="onex-kafka-check", daemon=True).start()
    watch.decided.wait(timeout_s + 5)
    if watch.failure is not None:
        return watch.failure
    if outcome:
        return outcome[0]
    return ConnectionFailure("unreachable", f"no answer within {timeout_s:g} s")


_watching: list[_FailureWatch] = []
_propagated = True
_lock = threading.Lock()


def _watch(watch: _FailureWatch) -> None:
    """Take kafka-python's records to ``watch`` only, while any check runs."""
    global _propagated
    kafka_logger = logging.getLogger("kafka")
    with _lock:
        if not _watching:
            _propagated = kafka_logger.propagate
            kafka_logger.propagate = False
        _watching.append(watch)
        kafka_logger.addHandler(watch)


def _unwatch(watch: _FailureWatch) -> None:
    kafka_logger = logging.getLogger("kafka")
    with _lock:
        kafka_logger.removeHandler(watch)
        _watching.remove(watch)
        if not _watching:
            kafka_logger.propagate = _propagated


def _reason(exc: BaseException, watch: _FailureWatch) -> str:
    if watch.last_error is not None:
        return watch.last_error
    return f"{type(exc).__name__}: {exc}"
