"""Short-lived kafka-python consumers that ask for their topics' metadata at once."""

from __future__ import annotations

from typing import Final

from kafka import KafkaConsumer

__all__ = ["METADATA_BACKOFF_MS", "prompt_metadata"]

METADATA_BACKOFF_MS: Final = 10
"""The least time between two metadata requests of such a consumer (kafka-python: 100)."""


def prompt_metadata(consumer: KafkaConsumer) -> bool:
    """Let a new ``consumer`` ask for its topics' metadata without waiting 100 ms.

    kafka-python refreshes metadata at most once per ``retry_backoff_ms`` (100 ms), its
    bootstrap included, and a topic the consumer does not know yet needs a refresh: so a
    changelog reader made for one partition waited 100 ms before it read anything (the
    wait Kafka's Java client dropped in KAFKA-4024), and restoring a reducer's
    partitions, one after the other, waited that long for each. kafka-python 3.0 also
    does not hand the consumer's ``retry_backoff_ms`` to its metadata, so this sets the
    metadata's own (``METADATA_BACKOFF_MS``). Return whether it could: a kafka-python
    without that attribute is left as it is (the consumer still works, 100 ms later).
    """
    config = getattr(getattr(consumer, "_cluster", None), "config", None)
    if not isinstance(config, dict) or "retry_backoff_ms" not in config:
        return False
    config["retry_backoff_ms"] = METADATA_BACKOFF_MS
    return True
