"""Changelog topics of keyed state: created or checked, and read back to their end.

One implementation for both Kafka clients (as the group hand-over): kafka-python's admin
client creates each reducer's changelog compacted, with its input's partition count, or
checks an existing one; a kafka-python consumer in assign mode reads a partition from its
start to its last stable offset, committed records only (``read_committed``: what an
aborted transaction wrote is never restored). Blocking: call from a worker thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from onex_actors.core import BusError, ConfigError, home_partition
from onex_actors.runtime import Record

from ._metadata import prompt_metadata

__all__ = ["changelog_bounds", "newest_of_key", "prepare_changelogs", "read_changelog"]

logger = logging.getLogger("onex_actors.kafka")

READ_BATCH = 5_000
"""Records handed to the store per call while a partition is read back."""

SOURCE_WAIT_S = 5.0
"""How long a command topic created just before may take to be listed (``create`` on)."""
SOURCE_WAIT_STEP_S = 0.1


def prepare_changelogs(
    client_config: Mapping[str, Any],
    sources: Mapping[str, str],
    *,
    replication_factor: int,
    create: bool,
) -> dict[str, int]:
    """Create or check each changelog (changelog topic → the command topic it mirrors).

    A changelog is compacted and created with as many partitions as its command topic (a
    key's state lives in the partition its commands are read from). A command topic that
    has grown since is served: its keys' partitions are counted among the changelog's
    (the first ones), and the others' commands are sent on to them (the restorer says so
    when it is given one of those). Return each changelog's partition count.
    ``ConfigError`` names every changelog that is not compacted or has more partitions
    than its command topic, with what to do; ``BusError`` if the brokers cannot be asked.
    """
    try:
        admin = KafkaAdminClient(**client_config)
    except (KafkaError, OSError, ValueError) as exc:
        raise BusError(f"cannot reach Kafka to prepare state topics: {exc}") from None
    try:
        return _prepare(admin, sources, replication_factor, create)
    except KafkaError as exc:
        raise BusError(f"preparing state topics failed: {type(exc).__name__}: {exc}") from None
    finally:
        admin.close()


def _prepare(
    admin: KafkaAdminClient,
    sources: Mapping[str, str],
    replication: int,
    create: bool,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    topics = [*sources.values(), *sources]
    counts = _partition_counts(admin, topics)
    for _ in range(round(SOURCE_WAIT_S / SOURCE_WAIT_STEP_S) if create else 0):
        if all(source in counts for source in sources.values()):
            break
        # the host has just created its command topics, perhaps through another client
        # (librdkafka's admin): the broker asked may not list them yet
        sleep(SOURCE_WAIT_STEP_S)
        counts = _partition_counts(admin, topics)
    problems: list[str] = []
    missing: list[NewTopic] = []
    for changelog, source in sources.items():
        wanted = counts.get(source)
        if wanted is None:
            problems.append(
                f"command topic {source} does not exist, so {changelog} cannot mirror it"
            )
            continue
        have = counts.get(changelog)
        if have is None:
            config = {"cleanup.policy": "compact"}
            missing.append(NewTopic(changelog, wanted, replication, topic_configs=config))
        elif have > wanted:
            problems.append(
                f"state topic {changelog} has {have} partitions but {source} has {wanted}: a "
                "key's state lives in the partition of its command topic its key hashes to "
                f"among the state topic's partitions, and {source} has no partition "
                f"{wanted} and up; give it {have} partitions (kafka-topics --alter "
                f"--partitions {have}), or, where its states may be lost, recreate the state "
                f"topic with {wanted} (a host rebuilds state only from it)"
            )
    if missing and not create:
        problems += [
            f"state topic {new.name} does not exist (kafka.create_topics is off)" for new in missing
        ]
    if problems:
        raise ConfigError("; ".join(problems))
    if missing:
        with suppress(TopicAlreadyExistsError):
            admin.create_topics(missing)
    compacted = _cleanup_policies(admin, list(sources))
    wrong = [t for t, policy in compacted.items() if policy is not None and "compact" not in policy]
    if wrong:
        raise ConfigError(
            f"state topic(s) {', '.join(wrong)} are not compacted (cleanup.policy "
            f"{compacted[wrong[0]]!r}): old states of a key would pile up or expire; set "
            "cleanup.policy=compact on them"
        )
    return {
        changelog: counts.get(changelog) or counts[source] for changelog, source in sources.items()
    }


def _partition_counts(admin: KafkaAdminClient, topics: Sequence[str]) -> dict[str, int]:
    existing = set(admin.list_topics())
    asked = [t for t in dict.fromkeys(topics) if t in existing]
    if not asked:
        return {}
    return {
        described["name"]: len(described["partitions"])
        for described in admin.describe_topics(asked)
        if not described.get("error_code")
    }


def _cleanup_policies(admin: KafkaAdminClient, topics: list[str]) -> dict[str, str | None]:
    resources = [ConfigResource(ConfigResourceType.TOPIC, t, ["cleanup.policy"]) for t in topics]
    try:
        described = admin.describe_configs(resources, config_filter="all")
    except (KafkaError, OSError, ValueError, KeyError, TypeError) as exc:
        logger.info("cannot read the state topics' cleanup.policy (%s)", exc)
        return {}
    found: dict[str, str | None] = {}
    for topic, configs in described.get("topic", {}).items():
        value = configs.get("cleanup.policy", {}).get("value")
        found[topic] = value if isinstance(value, str) else None
    return found


def _reader(client_config: Mapping[str, Any], topic: str, partition: int) -> KafkaConsumer:
    try:
        reader = KafkaConsumer(
            **client_config,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_poll_records=READ_BATCH,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
    except (KafkaError, OSError, ValueError) as exc:
        raise BusError(f"cannot reach Kafka to restore {topic}[{partition}]: {exc}") from None
    prompt_metadata(reader)
    return reader


def changelog_bounds(
    client_config: Mapping[str, Any], topic: str, partition: int
) -> tuple[int, int]:
    """Return ``topic``'s ``partition``'s first offset and its last stable offset."""
    tp = KafkaTopicPartition(topic, partition)
    consumer = _reader(client_config, topic, partition)
    try:
        first = consumer.beginning_offsets([tp])[tp]
        return first, consumer.end_offsets([tp])[tp]
    except KafkaError as exc:
        raise BusError(
            f"reading the offsets of {topic}[{partition}] failed: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        consumer.close(autocommit=False)


def read_changelog(
    client_config: Mapping[str, Any],
    topic: str,
    partition: int,
    apply: Callable[[Sequence[Record]], None],
    *,
    start: int = 0,
    timeout_s: float = 120.0,
) -> int:
    """Read ``topic``'s ``partition`` from ``start`` (its first offset at most) to its end.

    The end is the last stable offset. ``apply`` gets the records in batches, in order.
    Return how many were read. ``BusError`` if the end is not reached within ``timeout_s``
    (an open transaction of another producer holds the last stable offset back until it
    ends).
    """
    tp = KafkaTopicPartition(topic, partition)
    consumer = _reader(client_config, topic, partition)
    try:
        consumer.assign([tp])
        if start > 0:
            consumer.seek(tp, start)
        else:
            consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        read = 0
        waited_ms = 0
        while consumer.position(tp) < end:
            fetched = consumer.poll(timeout_ms=500).get(tp, [])
            if not fetched:
                waited_ms += 500
                if waited_ms >= timeout_s * 1000:
                    raise BusError(
                        f"restoring {topic}[{partition}]: at offset {consumer.position(tp)} of "
                        f"{end} after {timeout_s:g} s (an open transaction holds it back?)"
                    )
                continue
            apply(
                [
                    Record(topic, partition, r.offset, r.key, r.value, tuple(r.headers or ()))
                    for r in fetched
                ]
            )
            read += len(fetched)
        return read
    except KafkaError as exc:
        raise BusError(
            f"restoring {topic}[{partition}] failed: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        consumer.close(autocommit=False)


def newest_of_key(
    client_config: Mapping[str, Any], topic: str, key: bytes
) -> tuple[int, Record | None]:
    """Find ``key``'s newest committed record in ``topic`` (its home partition).

    Return the partition and the record (``None``: the key has none, or its newest is a
    tombstone). ``BusError`` if the topic does not exist or cannot be read.
    """
    try:
        probe = KafkaConsumer(**client_config, group_id=None, enable_auto_commit=False)
    except (KafkaError, OSError, ValueError) as exc:
        raise BusError(f"cannot reach Kafka to read {topic}: {exc}") from None
    prompt_metadata(probe)
    try:
        partitions = probe.partitions_for_topic(topic)
    finally:
        probe.close(autocommit=False)
    if not partitions:
        raise BusError(f"state topic {topic} does not exist: no runtime hosted the reducer yet")
    partition = home_partition(key, len(partitions))
    newest: list[Record | None] = [None]

    def keep(records: Sequence[Record]) -> None:
        for record in records:
            if record.key == key:
                newest[0] = record if record.value is not None else None

    read_changelog(client_config, topic, partition, keep)
    return partition, newest[0]
