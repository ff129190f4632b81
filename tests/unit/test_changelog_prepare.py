"""Changelogs created or checked against their command topics, with an admin stand-in.

The brokers' answers are scripted (which topics a listing shows, and when): what
matters here is what the preparation does with them. The real admin client is used by
the integration tier (tests/integration/test_reducers_on_kafka.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from onex_actors.bridges.kafka._changelog import SOURCE_WAIT_S, SOURCE_WAIT_STEP_S, _prepare
from onex_actors.core import ConfigError

pytestmark = pytest.mark.unit

CMD = "onex.app.local.global.cmd.node.account.v1"
STATE = "onex.app.local.global.state.node.account.v1"


class ListedLate:
    """An admin whose listings show the command topic from the ``shown_from``-th on."""

    def __init__(self, shown_from: int | None) -> None:
        self.shown_from = shown_from
        self.listings = 0
        self.created: list[Any] = []

    def list_topics(self) -> list[str]:
        self.listings += 1
        shown = self.shown_from is not None and self.listings >= self.shown_from
        return [CMD] if shown else []

    def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        return [{"name": t, "partitions": [0, 1, 2], "error_code": 0} for t in topics]

    def create_topics(self, topics: list[Any]) -> None:
        self.created += topics

    def describe_configs(self, resources: list[Any], **_: Any) -> dict[str, Any]:
        return {"topic": {STATE: {"cleanup.policy": {"value": "compact"}}}}


def test_a_command_topic_created_just_before_is_waited_for() -> None:
    admin, slept = ListedLate(shown_from=3), []
    counts = _prepare(admin, {STATE: CMD}, 1, True, sleep=slept.append)  # type: ignore[arg-type]
    assert counts == {STATE: 3}
    assert [(t.name, t.num_partitions) for t in admin.created] == [(STATE, 3)]
    assert slept == [SOURCE_WAIT_STEP_S, SOURCE_WAIT_STEP_S]


def test_a_command_topic_that_never_shows_is_named_after_the_wait() -> None:
    admin, slept = ListedLate(shown_from=None), []
    with pytest.raises(ConfigError, match=f"command topic {CMD} does not exist"):
        _prepare(admin, {STATE: CMD}, 1, True, sleep=slept.append)  # type: ignore[arg-type]
    assert sum(slept) == pytest.approx(SOURCE_WAIT_S)
    assert admin.created == []


def test_without_topic_creation_a_missing_command_topic_is_named_at_once() -> None:
    admin, slept = ListedLate(shown_from=3), []
    with pytest.raises(ConfigError, match=f"command topic {CMD} does not exist"):
        _prepare(admin, {STATE: CMD}, 1, False, sleep=slept.append)  # type: ignore[arg-type]
    assert slept == []


class Existing(ListedLate):
    """An admin listing both topics at once, each with its own partition count."""

    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__(shown_from=1)
        self.counts = counts

    def list_topics(self) -> list[str]:
        return list(self.counts)

    def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        return [
            {"name": t, "partitions": list(range(self.counts[t])), "error_code": 0} for t in topics
        ]


def test_a_command_topic_grown_past_its_changelog_is_served_with_the_changelogs_count() -> None:
    admin = Existing({CMD: 8, STATE: 4})
    assert _prepare(admin, {STATE: CMD}, 1, True) == {STATE: 4}  # type: ignore[arg-type]
    assert admin.created == []


def test_a_changelog_with_more_partitions_than_its_command_topic_stops_the_start() -> None:
    admin = Existing({CMD: 4, STATE: 8})
    with pytest.raises(ConfigError, match=f"state topic {STATE} has 8 partitions but {CMD} has 4"):
        _prepare(admin, {STATE: CMD}, 1, True)  # type: ignore[arg-type]
