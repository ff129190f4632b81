"""Where a hosted node's command partitions resume (``core.plan_resume``)."""

from __future__ import annotations

from onex_actors.core import NodeTopic, plan_resume

TOPIC = "onex.app.local.global.cmd.node.echo-node.v1"
ECHO = NodeTopic("echo-node", TOPIC, 2)


def test_the_furthest_commit_of_any_runtime_wins_and_is_committed_into_the_own_group() -> None:
    plan = plan_resume(
        [ECHO],
        own={(TOPIC, 0): 5},
        others={"runtime-a": {(TOPIC, 0): 9, (TOPIC, 1): 4}, "runtime-b": {(TOPIC, 1): 7}},
        ends={(TOPIC, 0): 12, (TOPIC, 1): 12},
        live_readers={},
    )
    assert [(p.partition, p.offset, p.source) for p in plan.points] == [
        (0, 9, "group runtime-a"),
        (1, 7, "group runtime-b"),
    ]
    assert plan.commit == {(TOPIC, 0): 9, (TOPIC, 1): 7}
    assert plan.conflicts == {}


def test_the_own_group_ahead_keeps_its_offsets_and_nothing_is_committed() -> None:
    plan = plan_resume(
        [ECHO],
        own={(TOPIC, 0): 9, (TOPIC, 1): 3},
        others={"runtime-a": {(TOPIC, 0): 2, (TOPIC, 1): 3}},
        ends={},
        live_readers={},
    )
    assert [(p.offset, p.source) for p in plan.points] == [(9, "own group"), (3, "own group")]
    assert plan.commit == {}


def test_nothing_committed_anywhere_starts_from_the_nodes_start_from() -> None:
    latest = NodeTopic("echo-node", TOPIC, 2, start_from="latest")
    ends = {(TOPIC, 0): 4, (TOPIC, 1): 6}
    earliest = plan_resume([ECHO], {}, {}, ends=ends, live_readers={})
    assert [(p.offset, p.source) for p in earliest.points] == [
        (None, "log start, nothing committed"),
        (None, "log start, nothing committed"),
    ]
    assert earliest.commit == {}
    from_end = plan_resume([latest], {}, {}, ends=ends, live_readers={})
    assert from_end.commit == {(TOPIC, 0): 4, (TOPIC, 1): 6}


def test_a_live_reader_of_the_node_is_a_conflict_unless_it_fans_out() -> None:
    readers = {TOPIC: frozenset({"runtime-a"})}
    plan = plan_resume([ECHO], {}, {}, ends={}, live_readers=readers)
    assert plan.conflicts == {"echo-node": ("runtime-a",)}
    fan_out = NodeTopic("echo-node", TOPIC, 2, fan_out=True)
    others = {"runtime-a": {(TOPIC, 0): 9}}
    own_only = plan_resume([fan_out], {}, others, ends={}, live_readers=readers)
    assert own_only.conflicts == {}
    assert own_only.commit == {}, "a fanned-out node keeps its own group's offsets"
