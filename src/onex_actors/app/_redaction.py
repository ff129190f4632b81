"""Keeping secrets out of every log record, ours and the libraries', at every level.

A secret is registered where it is unwrapped for a client (the Kafka SASL password,
a database DSN and its password). From then on every log record created in the
process, by any logger, has each registered secret replaced by ``***`` in its message
and in its formatted exception, before any handler or formatter sees it: kafka-python
logs its whole configuration at DEBUG, and a driver may echo a DSN in an error.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = ["MASK", "redact", "register_dsn", "register_secret"]

MASK: Final = "***"
_MIN_LENGTH: Final = 4
"""Shorter values are not masked: masking them would garble unrelated text."""

_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def register_secret(secret: str | None) -> None:
    """Mask ``secret`` in every log record from now on."""
    global _installed
    if secret is None or len(secret) < _MIN_LENGTH:
        return
    with _lock:
        _secrets.add(secret)
        if not _installed:
            _install()
            _installed = True


def register_dsn(dsn: str | None) -> None:
    """Mask a DSN whole, and its password wherever it appears alone."""
    if not dsn:
        return
    register_secret(dsn)
    try:
        password = urlsplit(dsn).password
    except ValueError:
        return
    register_secret(password)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret masked (longest first)."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _install() -> None:
    make_record = logging.getLogRecordFactory()

    def redacting_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(redacting_record)
