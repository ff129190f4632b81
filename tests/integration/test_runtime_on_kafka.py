"""The runtime tier's bus-agnostic tests, run unchanged on a real Kafka broker.

Each test function below is imported from tests/runtime; this module's ``bus``
fixture replaces the in-process bus with a Kafka bus (topics namespaced per test).
"""

from __future__ import annotations

import pytest
from tests.kafka_support import NamespacedBus
from tests.runtime.test_failures import (  # noqa: F401  (collected by pytest)
    test_malformed_records_go_to_the_runtime_dead_letters,
    test_non_json_result_is_a_clear_error,
    test_non_retryable_error_is_not_retried,
    test_one_failure_in_n_gives_one_error_and_n_minus_one_ok,
    test_tenant_outside_scope_is_answered_and_dead_lettered,
    test_unknown_node_goes_to_the_runtime_dead_letters,
)
from tests.runtime.test_flow import (  # noqa: F401  (collected by pytest)
    test_discovery_lists_hosted_nodes,
    test_echo_yields_exactly_one_result_event,
    test_replayed_command_is_answered_but_not_handled_twice,
    test_results_keep_per_key_order_by_default,
    test_unknown_runtime_op_is_an_error_and_a_dead_letter,
    test_uppercase_transformation,
)
from tests.runtime.test_listener import (  # noqa: F401  (collected by pytest)
    test_consumer_lag_counts_the_records_past_the_last_commit,
)
from tests.runtime.test_several_runtimes import (  # noqa: F401  (collected by pytest)
    test_each_runtime_is_its_own_consumer_group,
    test_two_runtimes_answer_their_own_nodes_and_a_command_for_nobody_waits,
)
from tests.runtime.test_supervision import (  # noqa: F401  (collected by pytest)
    test_evt_topic_of_each_node_is_its_own,
    test_temporary_node_is_not_restarted,
)


@pytest.fixture
def bus(kafka_bus: NamespacedBus) -> NamespacedBus:
    return kafka_bus
