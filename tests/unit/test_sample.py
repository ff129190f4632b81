"""``testing.strategies.sample``: the same seed draws the same examples, another seed others."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from onex_actors.testing.strategies import sample

pytestmark = pytest.mark.unit

LISTS = st.lists(st.integers(), max_size=5)


def test_the_same_seed_draws_the_same_examples() -> None:
    assert sample(LISTS, 30, seed=7) == sample(LISTS, 30, seed=7)
    assert sample(LISTS, 30) == sample(LISTS, 30)


def test_another_seed_draws_other_examples() -> None:
    drawn = {seed: sample(LISTS, 30, seed=seed) for seed in (0, 7, 8)}
    assert len(drawn[7]) == 30
    assert drawn[7] != drawn[8]
    assert drawn[0] != drawn[7]
