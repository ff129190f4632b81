"""The pure core: identifiers, envelopes, topics, contracts and routing.

Nothing here does I/O or imports trio, kafka, httpx2 or asyncpg; a test enforces it.
"""

from ._as_text import time_text as time_text
from ._as_text import uuid_bytes as uuid_bytes
from ._as_text import uuid_text as uuid_text
from ._asyncapi import asyncapi_document as asyncapi_document
from ._cel import CelExpression as CelExpression
from ._cel import ExpressionFailed as ExpressionFailed
from ._codec import DEFAULT_MAX_ENVELOPE_BYTES as DEFAULT_MAX_ENVELOPE_BYTES
from ._codec import decode_envelope as decode_envelope
from ._codec import encode_envelope as encode_envelope
from ._compute import computed_payload as computed_payload
from ._compute_contract import ComputeContract as ComputeContract
from ._compute_contract import ComputeSpec as ComputeSpec
from ._contract_schema import SCHEMA_FILE as SCHEMA_FILE
from ._contract_schema import contract_json_schema as contract_json_schema
from ._contracts import BaseNodeContract as BaseNodeContract
from ._contracts import ConsumeMode as ConsumeMode
from ._contracts import DbEffect as DbEffect
from ._contracts import DurableIdempotency as DurableIdempotency
from ._contracts import EffectContract as EffectContract
from ._contracts import EffectFamily as EffectFamily
from ._contracts import HandlerFamilies as HandlerFamilies
from ._contracts import HostSelector as HostSelector
from ._contracts import HttpEffect as HttpEffect
from ._contracts import LocalEffect as LocalEffect
from ._contracts import RuntimeHostContract as RuntimeHostContract
from ._contracts import Subscriptions as Subscriptions
from ._contracts import ThenCommand as ThenCommand
from ._derive import EVENT_OF_HEADER as EVENT_OF_HEADER
from ._derive import HOPS_HEADER as HOPS_HEADER
from ._derive import INSTANCE_HEADER as INSTANCE_HEADER
from ._derive import PARTITION_KEY_HEADER as PARTITION_KEY_HEADER
from ._derive import TRACE_HEADERS as TRACE_HEADERS
from ._derive import dead_letter_of as dead_letter_of
from ._derive import dead_letter_of_record as dead_letter_of_record
from ._derive import error_result_of as error_result_of
from ._derive import event_command as event_command
from ._derive import forwarded_command as forwarded_command
from ._derive import hops_of as hops_of
from ._derive import intent_command as intent_command
from ._derive import log_envelope as log_envelope
from ._derive import new_command as new_command
from ._derive import new_envelope_id as new_envelope_id
from ._derive import pure_result_of as pure_result_of
from ._derive import record_headers as record_headers
from ._derive import record_key as record_key
from ._derive import record_key_and_headers as record_key_and_headers
from ._derive import result_of as result_of
from ._derive import trace_context as trace_context
from ._envelope import GLOBAL_TENANT as GLOBAL_TENANT
from ._envelope import EnvelopeStatus as EnvelopeStatus
from ._envelope import EnvelopeType as EnvelopeType
from ._envelope import ErrorInfo as ErrorInfo
from ._envelope import OnexEnvelope as OnexEnvelope
from ._errors import BusError as BusError
from ._errors import ConfigError as ConfigError
from ._errors import ContractError as ContractError
from ._errors import EnvelopeError as EnvelopeError
from ._errors import HandlerError as HandlerError
from ._errors import OnexError as OnexError
from ._errors import StateStoreError as StateStoreError
from ._errors import TopicError as TopicError
from ._errors import TransactionAborted as TransactionAborted
from ._flow_graph import flow_graph as flow_graph
from ._flows import command_loop_problem as command_loop_problem
from ._flows import command_loops as command_loops
from ._flows import loop_problem as loop_problem
from ._flows import then_loops as then_loops
from ._flows import workflow_loop_problem as workflow_loop_problem
from ._flows import workflow_loops as workflow_loops
from ._idempotency import IdempotencyCache as IdempotencyCache
from ._ids import ContractId as ContractId
from ._ids import NodeId as NodeId
from ._ids import NodeKind as NodeKind
from ._ids import RuntimeId as RuntimeId
from ._ids import SemVer as SemVer
from ._ids import TenantId as TenantId
from ._ids import check_contract_id as check_contract_id
from ._ids import check_semver as check_semver
from ._ids import check_slug as check_slug
from ._ids import contract_id as contract_id
from ._json_object import non_finite_path as non_finite_path
from ._json_object import payload_problem as payload_problem
from ._jsonpath import JsonPath as JsonPath
from ._jsonpath import MissingValue as MissingValue
from ._key_order import KeyOrder as KeyOrder
from ._model_effects import EmbeddingEffect as EmbeddingEffect
from ._model_effects import LlmEffect as LlmEffect
from ._model_effects import LlmMessages as LlmMessages
from ._model_effects import VectorEffect as VectorEffect
from ._murmur2 import home_partition as home_partition
from ._murmur2 import murmur2 as murmur2
from ._node_contracts import AnyContract as AnyContract
from ._node_contracts import HostableContract as HostableContract
from ._node_contracts import NodeContract as NodeContract
from ._offsets import PartitionOffsets as PartitionOffsets
from ._parsing import CONTRACT_KINDS as CONTRACT_KINDS
from ._parsing import parse_contract as parse_contract
from ._partition import PartitionPhase as PartitionPhase
from ._partition import PartitionUnit as PartitionUnit
from ._payload_schema import PayloadSchema as PayloadSchema
from ._policies import RestartPolicy as RestartPolicy
from ._policies import RestartStrategy as RestartStrategy
from ._policies import RetryPolicy as RetryPolicy
from ._policies import backoff_delay as backoff_delay
from ._progress import ProgressWatch as ProgressWatch
from ._progress import Stall as Stall
from ._reducer import EXPIRE_TIMER as EXPIRE_TIMER
from ._reducer import KEY_STATE_EXTRA_BYTES as KEY_STATE_EXTRA_BYTES
from ._reducer import TIMER_HEADER as TIMER_HEADER
from ._reducer import Decision as Decision
from ._reducer import KeyState as KeyState
from ._reducer import ReduceContext as ReduceContext
from ._reducer import Reducer as Reducer
from ._reducer import stored_key as stored_key
from ._reducer import timer_command as timer_command
from ._reducer_contract import TIMEOUT_TRIGGER as TIMEOUT_TRIGGER
from ._reducer_contract import Fold as Fold
from ._reducer_contract import Fsm as Fsm
from ._reducer_contract import Intent as Intent
from ._reducer_contract import ReducerContract as ReducerContract
from ._reducer_contract import StateSpec as StateSpec
from ._reducer_contract import Transition as Transition
from ._resume import NodeTopic as NodeTopic
from ._resume import ResumePlan as ResumePlan
from ._resume import ResumePoint as ResumePoint
from ._resume import plan_resume as plan_resume
from ._rounds import Fate as Fate
from ._rounds import fate_of as fate_of
from ._routing import Delivery as Delivery
from ._routing import HostedNode as HostedNode
from ._routing import Rejection as Rejection
from ._routing import RejectionReason as RejectionReason
from ._routing import Route as Route
from ._routing import RoutingTable as RoutingTable
from ._routing import RuntimeCommand as RuntimeCommand
from ._routing import build_routing_table as build_routing_table
from ._routing import route as route
from ._scaffold import SCAFFOLD_FAMILIES as SCAFFOLD_FAMILIES
from ._scaffold import scaffold as scaffold
from ._slices import CommandRecord as CommandRecord
from ._slices import RoutedBatch as RoutedBatch
from ._slices import route_batch as route_batch
from ._sql import CompiledSql as CompiledSql
from ._sql import compile_named_sql as compile_named_sql
from ._supervision import ActorExit as ActorExit
from ._supervision import Restart as Restart
from ._supervision import Stop as Stop
from ._supervision import SupervisorState as SupervisorState
from ._supervision import decide as decide
from ._topics import Topic as Topic
from ._topics import TopicPattern as TopicPattern
from ._topics import cmd_topic as cmd_topic
from ._topics import dlq_topic as dlq_topic
from ._topics import evt_topic as evt_topic
from ._topics import log_topic as log_topic
from ._topics import state_topic as state_topic
from ._workflow import ENDED as WORKFLOW_ENDED
from ._workflow import REPLY_TO_HEADER as REPLY_TO_HEADER
from ._workflow import RESULT_OF_HEADER as RESULT_OF_HEADER
from ._workflow import StepTiming as StepTiming
from ._workflow import WorkflowDecision as WorkflowDecision
from ._workflow import WorkflowEngine as WorkflowEngine
from ._workflow import as_failed_result as as_failed_result
from ._workflow import instance_of as instance_of
from ._workflow import keyed_for_instance as keyed_for_instance
from ._workflow import reply_to_of as reply_to_of
from ._workflow import result_command as result_command
from ._workflow import sending_instance as sending_instance
from ._workflow_contract import OrchestratorContract as OrchestratorContract
from ._workflow_contract import StepCommand as StepCommand
from ._workflow_contract import StepRetry as StepRetry
from ._workflow_contract import Workflow as Workflow
from ._workflow_contract import WorkflowStep as WorkflowStep

__all__ = [
    "CONTRACT_KINDS",
    "DEFAULT_MAX_ENVELOPE_BYTES",
    "EVENT_OF_HEADER",
    "EXPIRE_TIMER",
    "GLOBAL_TENANT",
    "HOPS_HEADER",
    "INSTANCE_HEADER",
    "KEY_STATE_EXTRA_BYTES",
    "PARTITION_KEY_HEADER",
    "REPLY_TO_HEADER",
    "RESULT_OF_HEADER",
    "SCAFFOLD_FAMILIES",
    "SCHEMA_FILE",
    "TIMEOUT_TRIGGER",
    "TIMER_HEADER",
    "TRACE_HEADERS",
    "WORKFLOW_ENDED",
    "ActorExit",
    "AnyContract",
    "BaseNodeContract",
    "BusError",
    "CelExpression",
    "CommandRecord",
    "CompiledSql",
    "ComputeContract",
    "ComputeSpec",
    "ConfigError",
    "ConsumeMode",
    "ContractError",
    "ContractId",
    "DbEffect",
    "Decision",
    "Delivery",
    "DurableIdempotency",
    "EffectContract",
    "EffectFamily",
    "EmbeddingEffect",
    "EnvelopeError",
    "EnvelopeStatus",
    "EnvelopeType",
    "ErrorInfo",
    "ExpressionFailed",
    "Fate",
    "Fold",
    "Fsm",
    "HandlerError",
    "HandlerFamilies",
    "HostSelector",
    "HostableContract",
    "HostedNode",
    "HttpEffect",
    "IdempotencyCache",
    "Intent",
    "JsonPath",
    "KeyOrder",
    "KeyState",
    "LlmEffect",
    "LlmMessages",
    "LocalEffect",
    "MissingValue",
    "NodeContract",
    "NodeId",
    "NodeKind",
    "NodeTopic",
    "OnexEnvelope",
    "OnexError",
    "OrchestratorContract",
    "PartitionOffsets",
    "PartitionPhase",
    "PartitionUnit",
    "PayloadSchema",
    "ProgressWatch",
    "ReduceContext",
    "Reducer",
    "ReducerContract",
    "Rejection",
    "RejectionReason",
    "Restart",
    "RestartPolicy",
    "RestartStrategy",
    "ResumePlan",
    "ResumePoint",
    "RetryPolicy",
    "Route",
    "RoutedBatch",
    "RoutingTable",
    "RuntimeCommand",
    "RuntimeHostContract",
    "RuntimeId",
    "SemVer",
    "Stall",
    "StateSpec",
    "StateStoreError",
    "StepCommand",
    "StepRetry",
    "StepTiming",
    "Stop",
    "Subscriptions",
    "SupervisorState",
    "TenantId",
    "ThenCommand",
    "Topic",
    "TopicError",
    "TopicPattern",
    "TransactionAborted",
    "Transition",
    "VectorEffect",
    "Workflow",
    "WorkflowDecision",
    "WorkflowEngine",
    "WorkflowStep",
    "as_failed_result",
    "asyncapi_document",
    "backoff_delay",
    "build_routing_table",
    "check_contract_id",
    "check_semver",
    "check_slug",
    "cmd_topic",
    "command_loop_problem",
    "command_loops",
    "compile_named_sql",
    "computed_payload",
    "contract_id",
    "contract_json_schema",
    "dead_letter_of",
    "dead_letter_of_record",
    "decide",
    "decode_envelope",
    "dlq_topic",
    "encode_envelope",
    "error_result_of",
    "event_command",
    "evt_topic",
    "fate_of",
    "flow_graph",
    "forwarded_command",
    "home_partition",
    "hops_of",
    "instance_of",
    "intent_command",
    "keyed_for_instance",
    "log_envelope",
    "log_topic",
    "loop_problem",
    "murmur2",
    "new_command",
    "new_envelope_id",
    "non_finite_path",
    "parse_contract",
    "payload_problem",
    "plan_resume",
    "pure_result_of",
    "record_headers",
    "record_key",
    "record_key_and_headers",
    "reply_to_of",
    "result_command",
    "result_of",
    "route",
    "route_batch",
    "scaffold",
    "sending_instance",
    "state_topic",
    "stored_key",
    "then_loops",
    "time_text",
    "timer_command",
    "trace_context",
    "uuid_bytes",
    "uuid_text",
    "workflow_loop_problem",
    "workflow_loops",
]
