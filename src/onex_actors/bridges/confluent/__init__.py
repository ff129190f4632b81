"""The Kafka bridge on confluent-kafka (librdkafka): a second client behind the same bus port.

Optional: ``pip install 'onex-actors[confluent]'``.
"""

from ._bus import ConfluentBus as ConfluentBus
from ._bus import open_confluent_bus as open_confluent_bus
from ._consumer import ConfluentConsumerBridge as ConfluentConsumerBridge
from ._consumer import group_generation as group_generation
from ._consumer import unreadable_record as unreadable_record
from ._producer import ConfluentProducerBridge as ConfluentProducerBridge

__all__ = [
    "ConfluentBus",
    "ConfluentConsumerBridge",
    "ConfluentProducerBridge",
    "group_generation",
    "open_confluent_bus",
    "unreadable_record",
]
