"""Kafka: the ``Bus`` port over kafka-python (in threads), and a local dev broker."""

from ._bus import KafkaBus as KafkaBus
from ._bus import open_kafka_bus as open_kafka_bus
from ._client import follow as follow
from ._client import request as request
from ._consumer import KafkaConsumerBridge as KafkaConsumerBridge
from ._consumer import subscription_regex as subscription_regex
from ._local_broker import LocalKafka as LocalKafka
from ._local_broker import broker_answers as broker_answers
from ._local_tansu import LocalTansu as LocalTansu
from ._local_tansu import local_broker as local_broker
from ._producer import ProducerBridge as ProducerBridge

__all__ = [
    "KafkaBus",
    "KafkaConsumerBridge",
    "LocalKafka",
    "LocalTansu",
    "ProducerBridge",
    "broker_answers",
    "follow",
    "local_broker",
    "open_kafka_bus",
    "request",
    "subscription_regex",
]
