"""The kafka-python repairs apply to the pinned version, and say so when they cannot."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import kafka
import kafka.coordinator.base
import pytest
from kafka.consumer.fetcher import Fetcher
from kafka.consumer.subscription_state import SubscriptionState
from kafka.coordinator.consumer import ConsumerCoordinator

from onex_actors.bridges.kafka import _repairs as repairs
from onex_actors.bridges.kafka._repairs import REPAIRS_WRITTEN_FOR, repair_consumer

REPAIRS = {
    "parked_partitions",
    "uncollected_join",
    "discarded_join",
    "unreadable_batch",
    "kept_positions",
}


def test_the_internals_the_repairs_patch_are_in_the_pinned_kafka_python() -> None:
    # Checked on the classes: a KafkaConsumer opens a socket it does not close.
    assert kafka.__version__ == REPAIRS_WRITTEN_FOR
    fetcher = inspect.getsource(Fetcher)
    assert callable(Fetcher.fetched_records)
    assert "self._next_partition_records" in fetcher
    assert "self._paused_partition_records" in fetcher
    assert callable(ConsumerCoordinator.need_rejoin)
    assert callable(ConsumerCoordinator.join_group_async)
    assert "self._join_task" in inspect.getsource(kafka.coordinator.base)
    assert callable(ConsumerCoordinator._on_join_prepare_async)
    assert callable(SubscriptionState.assign_from_subscribed)
    assert callable(SubscriptionState.partitions_auto_assigned)
    assert "self._rebalance_protocol" in inspect.getsource(ConsumerCoordinator)


def test_each_repair_says_whether_it_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    internals = SimpleNamespace(
        _fetcher=SimpleNamespace(
            fetched_records=lambda: {},
            _next_partition_records=None,
            _paused_partition_records={},
        ),
        _coordinator=SimpleNamespace(
            _join_task=None,
            need_rejoin=lambda: False,
            join_group_async=None,
            _on_join_prepare_async=None,
            _rebalance_protocol=None,
        ),
        _subscription=SimpleNamespace(assign_from_subscribed=None, partitions_auto_assigned=None),
    )
    assert repair_consumer(internals) == dict.fromkeys(REPAIRS, True)  # type: ignore[arg-type]
    warned: list[str] = []
    monkeypatch.setattr(
        repairs.logger, "warning", lambda message, *args: warned.append(message % args)
    )
    bare = SimpleNamespace(_fetcher=SimpleNamespace(), _coordinator=SimpleNamespace())
    applied = repair_consumer(bare)  # type: ignore[arg-type]
    assert applied == dict.fromkeys(REPAIRS, False)
    (warning,) = warned
    assert "not applied" in warning
    assert REPAIRS_WRITTEN_FOR in warning
