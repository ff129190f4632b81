"""Test harness: hosts in a test's nursery or as processes, and a delivery checker.

``open_test_host`` runs a whole runtime host inside a test's nursery; ``host_process``
runs one as a real process; ``check`` accounts for every command a workload sent.
"""

from ._checker import DeliveryReport as DeliveryReport
from ._checker import Outcome as Outcome
from ._checker import SentRecord as SentRecord
from ._checker import check as check
from ._checker import outcome_of as outcome_of
from ._checker import render_reports as render_reports
from ._collector import EnvelopeCollector as EnvelopeCollector
from ._harness import HostHarness as HostHarness
from ._harness import open_test_host as open_test_host
from ._namespaced import NamespacedBus as NamespacedBus
from ._namespaced import NamespacedConsumer as NamespacedConsumer
from ._namespaced import new_namespace as new_namespace
from ._processes import HOST_COMMAND as HOST_COMMAND
from ._processes import default_host_log as default_host_log
from ._processes import host_env as host_env
from ._processes import host_process as host_process
from ._processes import read_line as read_line
from ._workload import CommandStream as CommandStream
from ._workload import OutcomeReader as OutcomeReader
from ._workload import RawRecord as RawRecord
from ._workload import committed_offsets as committed_offsets
from ._workload import create_topics as create_topics
from ._workload import end_offsets as end_offsets
from ._workload import longest_gap as longest_gap
from ._workload import send_records as send_records
from ._workload import slowest_partition as slowest_partition

__all__ = [
    "HOST_COMMAND",
    "CommandStream",
    "DeliveryReport",
    "EnvelopeCollector",
    "HostHarness",
    "NamespacedBus",
    "NamespacedConsumer",
    "Outcome",
    "OutcomeReader",
    "RawRecord",
    "SentRecord",
    "check",
    "committed_offsets",
    "create_topics",
    "default_host_log",
    "end_offsets",
    "host_env",
    "host_process",
    "longest_gap",
    "new_namespace",
    "open_test_host",
    "outcome_of",
    "read_line",
    "render_reports",
    "send_records",
    "slowest_partition",
]
