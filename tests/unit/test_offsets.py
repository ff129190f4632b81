from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onex_actors.core import PartitionOffsets


def test_commit_stops_at_the_oldest_unfinished_offset() -> None:
    offsets = PartitionOffsets(committed=10)
    for offset in (10, 11, 12, 13):
        offsets.start(offset)
    offsets.done(12)
    offsets.done(13)
    assert offsets.committable == 10
    offsets.done(10)
    assert offsets.committable == 11
    offsets.done(11)
    assert offsets.committable == 14
    assert len(offsets) == 0


def test_offsets_must_increase() -> None:
    offsets = PartitionOffsets()
    offsets.start(5)
    with pytest.raises(ValueError, match="offset 5 is not after in-flight offset 5"):
        offsets.start(5)


@given(st.permutations(list(range(30))), st.integers(0, 30))
def test_committable_is_the_first_offset_not_done(order: list[int], finished: int) -> None:
    offsets = PartitionOffsets()
    for offset in range(30):
        offsets.start(offset)
    done = set(order[:finished])
    for offset in order[:finished]:
        offsets.done(offset)
    first_not_done = next((o for o in range(30) if o not in done), 30)
    assert offsets.committable == first_not_done
    assert offsets.lowest_in_flight == (None if first_not_done == 30 else first_not_done)
