"""What the cluster's consumer groups hold on some topics, read and written with kafka-python.

Used before a host joins its group (``core.plan_resume``) whatever its Kafka client:
kafka-python's admin client lists the groups with their state (ListGroups v4+), fetches
their committed offsets in one batch per coordinator, describes classic groups'
subscriptions (DescribeGroups) and commits offsets into an empty group. A live group on
KIP-848's protocol is not a classic group: its subscriptions are read with
confluent-kafka's admin client where it is installed (the client such groups run on).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from onex_actors.core import BusError

from ._metadata import prompt_metadata

__all__ = ["GroupsSeen", "commit_group_offsets", "read_groups"]

logger = logging.getLogger("onex_actors.kafka")

Partition = tuple[str, int]
_IDLE_STATES = frozenset({"Empty", "Dead"})


@attrs.frozen
class GroupsSeen:
    """The groups' view of some topics, as the brokers answered."""

    own: Mapping[Partition, int]
    """The own group's committed offsets on the topics."""
    own_live: bool
    """Whether the own group has live members (another instance of the runtime)."""
    others: Mapping[str, Mapping[Partition, int]]
    """Each other group's committed offsets on the topics."""
    live_readers: Mapping[str, frozenset[str]]
    """Per topic, the other groups with live members that read it."""
    ends: Mapping[Partition, int]
    """Log end offsets of the topics' partitions."""
    partitions: Mapping[str, int]
    """How many partitions each existing topic has."""


def read_groups(
    client_config: Mapping[str, Any],
    own_group: str,
    other_groups: Sequence[str],
    topics: Sequence[str],
) -> GroupsSeen:
    """Read what ``own_group`` and ``other_groups`` hold on ``topics`` (blocking)."""
    try:
        admin = KafkaAdminClient(**client_config)
    except (KafkaError, OSError, ValueError) as exc:
        raise BusError(f"cannot read the consumer groups: {type(exc).__name__}: {exc}") from None
    try:
        return _read(admin, client_config, own_group, other_groups, topics)
    except KafkaError as exc:
        raise BusError(f"cannot read the consumer groups: {type(exc).__name__}: {exc}") from None
    finally:
        admin.close()


def commit_group_offsets(
    client_config: Mapping[str, Any], group: str, offsets: Mapping[Partition, int]
) -> None:
    """Commit ``offsets`` into ``group``, which must have no live member (blocking)."""
    admin = KafkaAdminClient(**client_config)
    try:
        answers = admin.alter_group_offsets(
            group,
            {
                KafkaTopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
                for (topic, partition), offset in offsets.items()
            },
        )
    except KafkaError as exc:
        raise BusError(
            f"cannot commit the hand-over offsets into group {group!r}: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        admin.close()
    failed = {tp: error for tp, error in answers.items() if error.__name__ != "NoError"}
    if failed:
        raise BusError(f"group {group!r} refused the hand-over offsets: {failed}")


def _read(
    admin: KafkaAdminClient,
    client_config: Mapping[str, Any],
    own_group: str,
    other_groups: Sequence[str],
    topics: Sequence[str],
) -> GroupsSeen:
    listed = {group["group_id"]: group for group in admin.list_groups()}
    wanted = set(topics)
    existing = [group for group in [own_group, *other_groups] if group in listed]
    committed: dict[str, dict[Partition, int]] = {}
    if existing:
        fetched = admin.list_group_offsets(dict.fromkeys(existing))
        for group, offsets in fetched.items():
            committed[group] = {
                (tp.topic, tp.partition): meta.offset
                for tp, meta in offsets.items()
                if tp.topic in wanted and meta.offset >= 0
            }
    live = [
        group
        for group in other_groups
        if group in listed and listed[group].get("group_state") not in _IDLE_STATES
    ]
    read_by = _topics_read(admin, client_config, live, listed)
    for group in live:  # not described: taken to read every topic it committed on
        read_by.setdefault(group, {topic for topic, _ in committed.get(group, {})})
    readers: dict[str, set[str]] = {}
    for group, read in read_by.items():
        for topic in read & wanted:
            readers.setdefault(topic, set()).add(group)
    own_state = listed.get(own_group, {}).get("group_state")
    ends, partitions = _ends(client_config, topics)
    return GroupsSeen(
        own=committed.get(own_group, {}),
        own_live=own_state is not None and own_state not in _IDLE_STATES,
        others={group: committed.get(group, {}) for group in other_groups if group != own_group},
        live_readers={topic: frozenset(groups) for topic, groups in readers.items()},
        ends=ends,
        partitions=partitions,
    )


def _topics_read(
    admin: KafkaAdminClient,
    client_config: Mapping[str, Any],
    groups: Sequence[str],
    listed: Mapping[str, Mapping[str, Any]],
) -> dict[str, set[str]]:
    """Return the topics each of the live ``groups`` subscribes to or is assigned."""
    read: dict[str, set[str]] = {}
    classic = [g for g in groups if listed[g].get("group_type", "classic") != "consumer"]
    if classic:
        for group, described in admin.describe_groups(classic).items():
            topics: set[str] = set()
            for member in described.get("members", []):
                topics.update((member.get("member_metadata") or {}).get("topics", []))
                for assigned in (member.get("member_assignment") or {}).get(
                    "assigned_partitions", []
                ):
                    topics.add(assigned["topic"])
            read[group] = topics
    kip848 = [g for g in groups if g not in classic]
    if kip848:
        read.update(_kip848_topics_read(client_config, kip848))
    return read


def _kip848_topics_read(
    client_config: Mapping[str, Any], groups: Sequence[str]
) -> dict[str, set[str]]:
    """Return the topics assigned to the members of KIP-848 groups (confluent-kafka)."""
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:
        # no way to ask: a live group is taken to read every topic it committed on
        logger.info("cannot describe KIP-848 groups %s without confluent-kafka", groups)
        return {}
    admin = AdminClient({"bootstrap.servers": str(client_config["bootstrap_servers"])})
    read: dict[str, set[str]] = {}
    for group, future in admin.describe_consumer_groups(list(groups)).items():
        try:
            described = future.result(timeout=10)
        except Exception as exc:
            logger.info("cannot describe group %s: %s", group, exc)
            continue
        read[group] = {
            tp.topic
            for member in described.members
            if member.assignment is not None
            for tp in member.assignment.topic_partitions
        }
    return read


def _ends(
    client_config: Mapping[str, Any], topics: Sequence[str]
) -> tuple[dict[Partition, int], dict[str, int]]:
    """Log end offsets and partition counts of the existing ``topics``."""
    consumer = KafkaConsumer(enable_auto_commit=False, **client_config)
    prompt_metadata(consumer)
    try:
        partitions: dict[str, int] = {}
        theirs = []
        for topic in topics:
            numbers = consumer.partitions_for_topic(topic)
            if numbers:
                partitions[topic] = len(numbers)
                theirs += [KafkaTopicPartition(topic, number) for number in numbers]
        ends = consumer.end_offsets(theirs) if theirs else {}
        return {(tp.topic, tp.partition): end for tp, end in ends.items()}, partitions
    finally:
        consumer.close()
