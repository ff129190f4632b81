"""Topic patterns resolved by the client, for groups on KIP-848's protocol.

With ``group.protocol=consumer`` the broker resolves a regex subscription, on its own
schedule: Apache Kafka 4.1 took up to 10 s to assign a new group its first partitions,
and picks up a topic created later at its next refresh of the group's regexes
(``group.consumer.regex.refresh.interval.ms``, 10 minutes by default). The classic
protocol's client resolves patterns from its metadata every few seconds instead. This
does the same for KIP-848 groups: the consumer thread lists the cluster's topics every
``refresh_s`` and subscribes to the names that match, which the broker assigns at once
(changing the subscription is incremental there, like every rebalance).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaException

from onex_actors.core import TopicPattern

__all__ = ["ResolvedSubscription"]

logger = logging.getLogger("onex_actors.kafka")


class ResolvedSubscription:
    """The topics that match some patterns now, refreshed from the cluster's metadata."""

    def __init__(
        self, patterns: Sequence[TopicPattern], *, refresh_s: float = 5.0, timeout_s: float = 5.0
    ) -> None:
        self.patterns = tuple(patterns)
        self.refresh_s = refresh_s
        self.timeout_s = timeout_s
        self.topics: tuple[str, ...] | None = None
        """The matching topics last seen (None before the first look)."""
        self._next = 0.0

    def changed(self, consumer: Consumer) -> tuple[str, ...] | None:
        """Return the matching topics if they changed since the last look, when one is due.

        Consumer thread only; a failed look (the broker away) is tried at the next one.
        """
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.refresh_s
        try:
            metadata = consumer.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            logger.warning("cannot list the topics to subscribe to: %s", exc.args[0])
            return None
        topics = tuple(
            sorted(
                topic
                for topic in metadata.topics
                if any(pattern.matches(topic) for pattern in self.patterns)
            )
        )
        if topics == self.topics:
            return None
        self.topics = topics
        return topics
