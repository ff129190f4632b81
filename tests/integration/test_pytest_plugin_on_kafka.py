"""The pytest plugin's --onex-kafka: a project's tests on a real broker, topics namespaced."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

PROJECT_TESTS = """
from onex_actors.testing import HostHarness, NamespacedBus


async def test_echo_answers_over_kafka(onex_host: HostHarness) -> None:
    assert isinstance(onex_host.bus, NamespacedBus)
    result = await onex_host.request("echo-node", {"over": "kafka"})
    assert result.payload == {"over": "kafka"}


async def test_a_killed_node_restarts_and_answers(onex_host: HostHarness) -> None:
    assert onex_host.kill("echo-node")
    result = await onex_host.request("echo-node", {"after": "kill"})
    assert result.payload == {"after": "kill"}
"""


def test_a_projects_tests_run_on_the_broker_the_option_names(
    pytester: pytest.Pytester, kafka_bootstrap: str
) -> None:
    shutil.copytree(REPO / "contracts", pytester.path / "contracts")
    (pytester.path / "config").mkdir()
    pytester.makeini("[pytest]\ntrio_mode = true\nonex_runtime = runtime-dev-light\n")
    pytester.makepyfile(test_project=PROJECT_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--onex-kafka", kafka_bootstrap
    )
    result.assert_outcomes(passed=2)
