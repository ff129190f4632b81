"""Shared fixtures; each test is marked with its tier from the folder it lives in."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# Properties here assert what a decision gives, never how long it takes. Hypothesis'
# default deadline (200 ms an example) depends on the machine: a CEL property failed once
# on a two-core machine (its text not kept), then passed 20,000 examples and every replay.
settings.register_profile("onex", deadline=None)
settings.load_profile("onex")

REPO = Path(__file__).resolve().parent.parent
TIERS = ("unit", "runtime", "integration")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture
def repo_contracts() -> Path:
    return REPO / "contracts"
