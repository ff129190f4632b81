from __future__ import annotations

import re

import pytest
from hypothesis import given
from tests.strategies import small_patterns, small_topics, topics

from onex_actors.core import (
    Topic,
    TopicError,
    TopicPattern,
    cmd_topic,
    dlq_topic,
    evt_topic,
    log_topic,
)


def reference_match(pattern: list[str], topic: list[str]) -> bool:
    """A slow, obviously right matcher: '*' is one segment, a final '#' one or more."""
    if not pattern:
        return not topic
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return len(topic) >= 1
    if not topic:
        return False
    return (head in ("*", topic[0])) and reference_match(rest, topic[1:])


@given(topics)
def test_format_parse_round_trips(topic: Topic) -> None:
    assert Topic.parse(str(topic)) == topic


@given(small_patterns(), small_topics)
def test_pattern_matching_agrees_with_reference(pattern: str, topic: str) -> None:
    assert TopicPattern(pattern).matches(topic) == reference_match(
        pattern.split("."), topic.split(".")
    )


def test_spec_topics() -> None:
    assert cmd_topic("echo-node") == "onex.app.local.global.cmd.node.echo-node.v1"
    assert evt_topic("echo-node") == "onex.app.local.global.evt.node.echo-node.v1"
    assert dlq_topic("echo-node") == "onex.app.local.global.dlq.node.echo-node.v1"
    assert log_topic("runtime-dev") == "onex.sys.local.global.log.runtime.runtime-dev.v1"


def test_hash_matches_every_command_topic_but_no_event_topic() -> None:
    every_cmd = TopicPattern("onex.app.local.global.cmd.node.#")
    assert every_cmd.matches(cmd_topic("echo-node"))
    assert every_cmd.matches(cmd_topic("query-user"))
    assert not every_cmd.matches(evt_topic("echo-node"))
    assert not every_cmd.matches("onex.app.local.global.cmd.node")


def test_star_matches_exactly_one_segment() -> None:
    pattern = TopicPattern("onex.app.local.global.*.node.echo-node.v1")
    assert pattern.matches(cmd_topic("echo-node"))
    assert pattern.matches(evt_topic("echo-node"))
    assert not pattern.matches("onex.app.local.global.cmd.x.node.echo-node.v1")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("kafka.topic", "does not follow the grammar"),
        ("onex.app.local.global.cmd.node.echo-node", "does not follow the grammar"),
        ("onex.app.local.global.cmd.node.echo-node.1", "must end with a version"),
        ("onex.web.local.global.cmd.node.echo-node.v1", "plane 'web'"),
        ("onex.app.local.global.event.node.echo-node.v1", "type 'event'"),
        ("onex.app.local.global.cmd.node.Echo.v1", "<slug> 'Echo'"),
    ],
)
def test_bad_topics_say_what_is_wrong(name: str, expected: str) -> None:
    with pytest.raises(TopicError, match=expected):
        Topic.parse(name)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("onex.#.cmd", "'#' may only be the last segment"),
        ("onex.app..cmd", "segment '' must be a slug"),
        ("onex.app.cmd+", "segment 'cmd\\+' must be a slug"),
    ],
)
def test_bad_patterns_say_what_is_wrong(pattern: str, expected: str) -> None:
    with pytest.raises(TopicError, match=expected):
        TopicPattern(pattern)


POSIX_CASES = [
    "onex.app.local.global.cmd.node.#",
    "onex.app.*.global.cmd.node.echo-node.v1",
    "onex.app.local.global.cmd.node.echo-node.v1",
    "#",
    "onex.*.local.*.cmd.#",
]
TOPICS = [
    "onex.app.local.global.cmd.node.echo-node.v1",
    "onex.app.local.global.cmd.node",
    "onex.app.t1.global.cmd.node.echo-node.v1",
    "onex.app.local.global.evt.node.echo-node.v1",
    "onex.sys.local.acme.cmd.x",
    "other",
    "onex.app.local.global.cmd.nodeX.a",
]


@pytest.mark.parametrize("text", POSIX_CASES)
def test_posix_form_matches_what_the_pattern_matches(text: str) -> None:
    pattern = TopicPattern(text)
    posix = pattern.posix
    assert posix.startswith("^")
    assert posix.endswith("$")
    assert "(?:" not in posix
    assert "\\-" not in posix
    for topic in TOPICS:
        assert (re.fullmatch(posix[1:-1], topic) is not None) == pattern.matches(topic), topic
