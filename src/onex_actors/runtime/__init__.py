"""The actor runtime: the data path and the ports it uses.

Dispatch (a poll into per-node slices), inboxes, supervised node actors, the outbox,
commit tracking and the delivery strategies (at least once, exactly once); adapters
(``bridges``, ``handlers``) plug in through ``_ports``.
"""

from ._actor import NodeActor as NodeActor
from ._commits import CommitTracker as CommitTracker
from ._commits import OffsetMarks as OffsetMarks
from ._delivery import Admitted as Admitted
from ._delivery import AtLeastOnce as AtLeastOnce
from ._delivery import Delivery as Delivery
from ._delivery import ExactlyOnce as ExactlyOnce
from ._dispatch import Dispatcher as Dispatcher
from ._dispatch import RuntimeAnswer as RuntimeAnswer
from ._health import DURATION_BUCKETS_S as DURATION_BUCKETS_S
from ._health import Durations as Durations
from ._health import NodeHealth as NodeHealth
from ._health import NodeStatus as NodeStatus
from ._health import RuntimeHealth as RuntimeHealth
from ._inbox import FlowControl as FlowControl
from ._inbox import Inbox as Inbox
from ._item import WorkItem as WorkItem
from ._keyed import KeyedNode as KeyedNode
from ._node_runtime import NodeRuntime as NodeRuntime
from ._node_runtime import open_node_runtime as open_node_runtime
from ._orchestrator_node import OrchestratorHandler as OrchestratorHandler
from ._outbox import RECORD_OVERHEAD as RECORD_OVERHEAD
from ._outbox import Fallback as Fallback
from ._outbox import Outbox as Outbox
from ._outbox import RuntimeLog as RuntimeLog
from ._outbox import record_size as record_size
from ._ports import AckCallback as AckCallback
from ._ports import AnswerOf as AnswerOf
from ._ports import AnswerStore as AnswerStore
from ._ports import BatchAck as BatchAck
from ._ports import BatchHandler as BatchHandler
from ._ports import Bus as Bus
from ._ports import BusConsumer as BusConsumer
from ._ports import ChangelogBus as ChangelogBus
from ._ports import Handler as Handler
from ._ports import HandlerHealth as HandlerHealth
from ._ports import OutboundRecord as OutboundRecord
from ._ports import PartitionEvents as PartitionEvents
from ._ports import PartitionFollower as PartitionFollower
from ._ports import PureHandler as PureHandler
from ._ports import PureOutcome as PureOutcome
from ._ports import Record as Record
from ._ports import RewindableConsumer as RewindableConsumer
from ._ports import SqlPool as SqlPool
from ._ports import TopicPartition as TopicPartition
from ._ports import TransactionalBus as TransactionalBus
from ._ports import TransactionState as TransactionState
from ._reducer_node import ReducerHandler as ReducerHandler
from ._restore import RestoreReport as RestoreReport
from ._restore import StateRestorer as StateRestorer
from ._state import KeyedStore as KeyedStore
from ._state_store import Checkpoint as Checkpoint
from ._state_store import MemoryStates as MemoryStates
from ._state_store import StateStore as StateStore
from ._supervisor import supervise as supervise
from ._ticket import Ticket as Ticket
from ._timers import TimerScanner as TimerScanner
from ._tracing import EnvelopeSpan as EnvelopeSpan
from ._tracing import HandlerSpan as HandlerSpan
from ._tracing import Tracer as Tracer
from ._work import BATCH_LIMIT as BATCH_LIMIT
from ._work import NodeWork as NodeWork

__all__ = [
    "BATCH_LIMIT",
    "DURATION_BUCKETS_S",
    "RECORD_OVERHEAD",
    "AckCallback",
    "Admitted",
    "AnswerOf",
    "AnswerStore",
    "AtLeastOnce",
    "BatchAck",
    "BatchHandler",
    "Bus",
    "BusConsumer",
    "CommitTracker",
    "Delivery",
    "Dispatcher",
    "Durations",
    "EnvelopeSpan",
    "ExactlyOnce",
    "Fallback",
    "FlowControl",
    "Handler",
    "HandlerHealth",
    "HandlerSpan",
    "InMemoryStateStore",
    "Inbox",
    "NodeActor",
    "NodeHealth",
    "NodeRuntime",
    "NodeStatus",
    "NodeWork",
    "OffsetMarks",
    "OutboundRecord",
    "PartitionEvents",
    "PureHandler",
    "PureOutcome",
    "Record",
    "ReducerHandler",
    "RewindableConsumer",
    "RuntimeAnswer",
    "RuntimeHealth",
    "RuntimeLog",
    "SqlPool",
    "StateStore",
    "Ticket",
    "TimerScanner",
    "TopicPartition",
    "Tracer",
    "TransactionState",
    "TransactionalBus",
    "WorkItem",
    "open_node_runtime",
    "record_size",
    "supervise",
]
