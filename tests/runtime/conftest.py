"""The runtime tier runs on the in-process bus; tests/integration reruns some on Kafka."""

from __future__ import annotations

import pytest

from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.runtime import Bus


@pytest.fixture
def bus() -> Bus:
    return InProcessBus()
