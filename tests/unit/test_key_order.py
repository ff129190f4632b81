"""``KeyOrder``, pure, against any interleaving of arrivals, hand-outs and completions.

Under any schedule: no two items of one key are out at once, each key's items are
handed out (and so answered) in the order they arrived, items without a key are never
held back, and everything that arrives is handed out in the end.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onex_actors.core import KeyOrder

KEYS = st.one_of(st.none(), st.sampled_from("abcd"))

Step = tuple[str, int]


@st.composite
def schedules(draw: st.DrawFn) -> tuple[list[str | None], list[Step]]:
    arrivals = draw(st.lists(KEYS, max_size=40))
    kinds = st.sampled_from(["arrive", "take", "take", "done", "done"])
    steps = draw(st.lists(st.tuples(kinds, st.integers(0, 1_000)), max_size=200))
    return arrivals, steps


@settings(max_examples=400)
@given(schedules())
def test_no_key_overlaps_and_each_key_keeps_its_arrival_order(
    schedule: tuple[list[str | None], list[Step]],
) -> None:
    arrivals, steps = schedule
    queue: KeyOrder[int] = KeyOrder()
    arrived = 0
    out: list[tuple[int, object]] = []
    handed_out: dict[object, list[int]] = defaultdict(list)

    def take() -> None:
        item, key = queue.pop()
        assert key == arrivals[item]
        if key is not None:
            assert all(held != key for _, held in out), f"two items of key {key!r} are out"
        out.append((item, key))
        handed_out[key].append(item)

    def done(choice: int) -> None:
        _, key = out.pop(choice % len(out))  # completions in any order
        queue.release(key)

    for kind, choice in steps:
        if kind == "arrive" and arrived < len(arrivals):
            queue.push(arrived, arrivals[arrived])
            arrived += 1
        elif kind == "take" and queue.ready:
            take()
        elif kind == "done" and out:
            done(choice)
        assert len(queue) == arrived - sum(len(items) for items in handed_out.values())
    # drain: everything that arrived comes out, whatever was left mid-way
    while arrived < len(arrivals):
        queue.push(arrived, arrivals[arrived])
        arrived += 1
    while queue.ready or out:
        if queue.ready:
            take()
        else:
            done(0)
    assert len(queue) == 0
    assert queue.keys_held == 0
    for key, items in handed_out.items():
        if key is not None:
            assert items == sorted(items), f"key {key!r} handed out out of order: {items}"
    assert sorted(i for items in handed_out.values() for i in items) == list(range(arrived))


def test_items_without_a_key_are_never_held_back() -> None:
    queue: KeyOrder[str] = KeyOrder()
    for item in ("a1", "a2"):
        queue.push(item, "a")
    queue.push("free", None)
    assert [queue.pop()[0], queue.pop()[0]] == ["a1", "free"]
    assert queue.ready == 0  # a2 waits for a1
    queue.release("a")
    assert queue.pop() == ("a2", "a")


def test_popping_with_nothing_ready_is_an_error() -> None:
    queue: KeyOrder[str] = KeyOrder()
    queue.push("a1", "a")
    queue.push("a2", "a")
    queue.pop()
    with pytest.raises(IndexError):
        queue.pop()
