"""The pytest plugin, as a project using onex-actors runs it: its own tests, its contracts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]

PROJECT_TESTS = '''
import pytest
import trio

from onex_actors.testing import HostHarness


class Upper:
    """A handler the test puts in place of echo-node's."""

    async def execute(self, envelope):
        return {k: v.upper() for k, v in envelope.payload.items()}

    async def health_check(self):
        from onex_actors.runtime import HandlerHealth
        return HandlerHealth(healthy=True)

    async def aclose(self):
        pass


async def test_echo_answers(onex_host: HostHarness) -> None:
    result = await onex_host.request("echo-node", {"hello": "world"})
    assert result.payload == {"hello": "world"}


async def test_a_killed_node_restarts_and_answers(onex_host: HostHarness) -> None:
    assert onex_host.kill("echo-node")
    result = await onex_host.request("echo-node", {"after": "kill"})
    assert result.payload == {"after": "kill"}
    assert onex_host.health().nodes["echo-node"].restarts == 1


class TestReplacedHandler:
    @pytest.fixture
    def onex_handlers(self):
        return {"echo-node": Upper()}

    async def test_the_replacement_answers(self, onex_host: HostHarness) -> None:
        result = await onex_host.request("echo-node", {"a": "b"})
        assert result.payload == {"a": "B"}


async def test_the_mock_clock_drives_the_host(onex_host: HostHarness, autojump_clock) -> None:
    before = trio.current_time()
    await trio.sleep(3600)  # an hour of the host's clock, no real time
    result = await onex_host.request("echo-node", {"later": True})
    assert result.payload == {"later": True}
    assert trio.current_time() - before >= 3600
'''


def test_a_projects_tests_get_a_runtime_from_its_contracts(pytester: pytest.Pytester) -> None:
    shutil.copytree(REPO / "contracts", pytester.path / "contracts")
    (pytester.path / "config").mkdir()
    pytester.makeini("[pytest]\ntrio_mode = true\nonex_runtime = runtime-dev-light\n")
    pytester.makepyfile(test_project=PROJECT_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_the_option_and_ini_keys_are_listed(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--onex-kafka=HOST:PORT*", "*onex_runtime*", "*onex_contracts*"])
