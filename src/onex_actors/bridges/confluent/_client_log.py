"""The logger librdkafka's own lines go to, apart from the bridge's (``onex_actors.kafka``).

Kept apart so that ``BrokerOutage`` can take the client's connection failures without
seeing its own lines about them. A line that says librdkafka retries because a
coordinator is still loading (a fresh broker's first producer: "Failed to acquire
idempotence PID ... Coordinator load in progress: retrying") is information, not a
warning: it goes out at INFO.
"""

from __future__ import annotations

import logging

__all__ = ["CLIENT_LOGGER"]

CLIENT_LOGGER = logging.getLogger("onex_actors.kafka.librdkafka")
"""Every librdkafka client of the bridge logs here (``logger=`` of its constructor)."""


class _RetriedWhileLoading(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.WARNING
            and "load in progress: retrying" in record.getMessage()
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
            return CLIENT_LOGGER.isEnabledFor(logging.INFO)
        return True


CLIENT_LOGGER.addFilter(_RetriedWhileLoading())
