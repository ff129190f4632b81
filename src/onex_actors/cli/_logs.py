"""The host process's log lines: text for people, JSON for machines."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

__all__ = ["JsonLogFormatter"]


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the runtime's fields.

    A runtime event (``RuntimeLog.event``) carries its fields (``runtime_id``, ``event``,
    ``node_id``, ``correlation_id``...) as keys of their own, so a log pipeline can
    filter on them without parsing the message.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return ``record`` as one line of JSON."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "onex", None)
        if isinstance(fields, Mapping):
            entry.update((str(k), v) for k, v in fields.items() if str(k) not in entry)
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
