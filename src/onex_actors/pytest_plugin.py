"""The onex pytest plugin: a runtime from the project's contracts in a test, one fixture.

Registered through the ``pytest11`` entry point, so ``pip install 'onex-actors[test]'``
is all a project needs (pytest-trio runs the async tests and fixtures). Fixtures:

- ``onex_host``: the runtime ``onex_runtime`` of the contracts ``onex_contracts``, whole,
  inside the test's trio nursery, as a ``HostHarness``: ``request``, ``send``,
  ``results_of``, ``dead_letters``, ``logs``, ``health``, ``state``, ``kill``. On the
  in-process bus (trio's ``MockClock`` and ``autojump_clock`` work there: retries,
  backoffs and timeouts, a state's ``timeout_s`` and ``ttl_s`` among them, take no real
  time), or with ``--onex-kafka HOST:PORT`` on that broker, the test's topics and
  consumer groups in a namespace of their own.
- ``onex_runtime`` (ini ``onex_runtime``, default ``runtime-dev``), ``onex_contracts``
  (ini ``onex_contracts``, default the project's ``contracts/``) and ``onex_handlers``
  (default none): override any of them in a test module or ``conftest.py``; a handler
  in ``onex_handlers`` replaces that node's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from onex_actors.registry import ContractRegistry
    from onex_actors.testing import HostHarness

# The runtime (and the Kafka clients under it) is imported when a test first asks for
# onex_host, not when pytest loads the plugin in every project that has onex-actors.

__all__ = [
    "KAFKA_PYTHON_WARNINGS",
    "onex_contracts",
    "onex_handlers",
    "onex_host",
    "onex_runtime",
    "pytest_addoption",
    "pytest_configure",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--onex-kafka`` and the ini keys ``onex_runtime`` and ``onex_contracts``."""
    group = parser.getgroup("onex", "onex-actors runtime in tests")
    group.addoption(
        "--onex-kafka",
        metavar="HOST:PORT",
        default=None,
        help="run onex_host on this Kafka broker (topics namespaced per test) instead of "
        "the in-process bus",
    )
    parser.addini("onex_runtime", "runtime the onex_host fixture runs", default="runtime-dev")
    parser.addini(
        "onex_contracts", "contract tree of onex_host (default: the project's contracts/)"
    )


KAFKA_PYTHON_WARNINGS = (
    "ignore:read_text is deprecated:DeprecationWarning",
    "ignore:open_text is deprecated:DeprecationWarning",
)
"""What kafka-python 3.0 warns of at import (its protocol schemas, read the deprecated way):
not the project's to act on, so not shown in its test runs."""


def pytest_configure(config: pytest.Config) -> None:
    """Keep kafka-python's import-time deprecation warnings out of the project's report."""
    for line in KAFKA_PYTHON_WARNINGS:
        config.addinivalue_line("filterwarnings", line)


@pytest.fixture
def onex_runtime(pytestconfig: pytest.Config) -> str:
    """Name the runtime-host contract ``onex_host`` runs (ini ``onex_runtime``)."""
    return str(pytestconfig.getini("onex_runtime"))


@pytest.fixture
def onex_contracts(pytestconfig: pytest.Config) -> Path | ContractRegistry:
    """Name the contract tree ``onex_host`` reads (ini ``onex_contracts``, else ``contracts/``)."""
    from onex_actors.app import from_project_root

    configured = pytestconfig.getini("onex_contracts")
    if configured:
        return Path(pytestconfig.rootpath) / str(configured)
    return from_project_root(Path("contracts"), Path(pytestconfig.rootpath))


@pytest.fixture
def onex_handlers() -> Mapping[str, Any]:
    """Name handlers replacing those of the named nodes (none by default)."""
    return {}


@pytest.fixture
async def onex_host(
    pytestconfig: pytest.Config,
    onex_runtime: str,
    onex_contracts: Path | ContractRegistry,
    onex_handlers: Mapping[str, Any],
) -> AsyncIterator[HostHarness]:
    """Run the runtime ``onex_runtime`` for the test (see the module's docstring)."""
    from onex_actors.app import HostConfig, open_bus
    from onex_actors.testing import NamespacedBus, open_test_host

    bootstrap = pytestconfig.getoption("onex_kafka")
    if bootstrap is None:
        async with open_test_host(
            onex_runtime, contracts=onex_contracts, handlers=onex_handlers
        ) as host:
            yield host
        return
    config = HostConfig.model_validate(
        {"bus": {"kind": "kafka"}, "kafka": {"bootstrap_servers": bootstrap}}
    )
    async with (
        open_bus(config) as bus,
        open_test_host(
            onex_runtime,
            contracts=onex_contracts,
            config=config,
            bus=NamespacedBus(bus),
            handlers=onex_handlers,
        ) as host,
    ):
        yield host
