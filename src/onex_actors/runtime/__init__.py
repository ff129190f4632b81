"""The actor runtime: supervised node actors with bounded inboxes, and the ports they use."""

from ._actor import NodeActor as NodeActor
from ._actor import WorkItem as WorkItem
from ._health import NodeHealth as NodeHealth
from ._health import NodeStatus as NodeStatus
from ._health import RuntimeHealth as RuntimeHealth
from ._node_runtime import NodeRuntime as NodeRuntime
from ._node_runtime import open_node_runtime as open_node_runtime
from ._outbox import RECORD_OVERHEAD as RECORD_OVERHEAD
from ._outbox import Fallback as Fallback
from ._outbox import Outbox as Outbox
from ._outbox import RuntimeLog as RuntimeLog
from ._outbox import record_size as record_size
from ._ports import AckCallback as AckCallback
from ._ports import Bus as Bus
from ._ports import BusConsumer as BusConsumer
from ._ports import Handler as Handler
from ._ports import HandlerHealth as HandlerHealth
from ._ports import OutboundRecord as OutboundRecord
from ._ports import Record as Record
from ._ports import SqlPool as SqlPool
from ._ports import TopicPartition as TopicPartition
from ._supervisor import supervise as supervise
from ._ticket import Ticket as Ticket

__all__ = [
    "RECORD_OVERHEAD",
    "AckCallback",
    "Bus",
    "BusConsumer",
    "Fallback",
    "Handler",
    "HandlerHealth",
    "NodeActor",
    "NodeHealth",
    "NodeRuntime",
    "NodeStatus",
    "OutboundRecord",
    "Record",
    "RuntimeHealth",
    "RuntimeLog",
    "SqlPool",
    "Ticket",
    "TopicPartition",
    "WorkItem",
    "open_node_runtime",
    "record_size",
    "supervise",
]
