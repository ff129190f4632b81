"""``DueIndex``: the keys due by a time are exactly those a scan of every key would find."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from onex_actors.runtime._due import DueIndex

Step = tuple[str, str, float | None]

STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("set"),
            st.sampled_from("abcdefgh"),
            st.one_of(st.none(), st.integers(0, 40).map(float)),
        ),
        st.tuples(st.just("scan"), st.just(""), st.integers(-5, 40).map(float)),
    ),
    max_size=300,
)


@settings(max_examples=400)
@given(STEPS)
def test_the_keys_due_are_those_a_full_scan_finds(steps: list[Step]) -> None:
    index = DueIndex()
    model: dict[str, float] = {}  # each key's due time, scanned whole each time
    for kind, key, value in steps:
        if kind == "set":
            index.set(key, value)
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        else:
            assert value is not None
            # any time, earlier ones too (a wall clock set back)
            assert sorted(index.due(value)) == sorted(k for k, d in model.items() if d <= value)
        assert len(index) == len(model)


def test_a_scan_after_a_long_gap_or_with_the_clock_set_back_finds_the_same_keys() -> None:
    index = DueIndex()
    index.set("soon", 1_700_000_000.5)
    index.set("later", 1_700_000_100.0)
    assert index.due(10.0) == []
    assert index.due(1_700_000_000.6) == ["soon"]  # a gap of years: the slots, not seconds
    index.set("past", 5.0)  # due in a second swept already: due at once
    assert sorted(index.due(1_700_000_000.6)) == ["past", "soon"]
    assert index.due(6.0) == ["past"]  # the clock set back
    index.set("soon", None)
    assert sorted(index.due(1_700_000_200.0)) == ["later", "past"]
