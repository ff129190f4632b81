"""Kafka: the ``Bus`` port over kafka-python, its consumer and producer in threads."""

from ._bus import KafkaBus as KafkaBus
from ._bus import open_kafka_bus as open_kafka_bus
from ._changelog import newest_of_key as newest_of_key
from ._connection_check import ConnectionFailure as ConnectionFailure
from ._connection_check import connection_failure as connection_failure
from ._consumer import KafkaConsumerBridge as KafkaConsumerBridge
from ._consumer import subscription_regex as subscription_regex
from ._groups import GroupsSeen as GroupsSeen
from ._groups import commit_group_offsets as commit_group_offsets
from ._groups import read_groups as read_groups
from ._probe import CONSUMER_GROUP_HEARTBEAT as CONSUMER_GROUP_HEARTBEAT
from ._probe import broker_api_keys as broker_api_keys
from ._producer import ProducerBridge as ProducerBridge

__all__ = [
    "CONSUMER_GROUP_HEARTBEAT",
    "ConnectionFailure",
    "GroupsSeen",
    "KafkaBus",
    "KafkaConsumerBridge",
    "ProducerBridge",
    "broker_api_keys",
    "commit_group_offsets",
    "connection_failure",
    "newest_of_key",
    "open_kafka_bus",
    "read_groups",
    "subscription_regex",
]
