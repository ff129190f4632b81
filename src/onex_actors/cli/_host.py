"""``omninode-runtime-host``: run one runtime host until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import cyclopts
import trio

from onex_actors import __version__
from onex_actors.app import HostConfig, from_project_root, load_config, open_runtime_host
from onex_actors.core import ConfigError, OnexError

from ._client import DEFAULT_RUNTIME, default_runtime
from ._errors import cli_error_formatter, report, unwrap
from ._logs import JsonLogFormatter
from ._workers import run_workers

__all__ = ["FOREIGN_LOGGERS", "host_app", "host_main", "quiet_foreign_loggers"]

logger = logging.getLogger("onex_actors.host")

host_app = cyclopts.App(
    name="omninode-runtime-host",
    help="Run a runtime host: consume commands, run them through the hosted nodes, "
    "produce results. Stops gracefully on SIGINT or SIGTERM.",
    version=__version__,
    error_formatter=cli_error_formatter("omninode-runtime-host"),
)


@host_app.default
def run_host(
    *,
    runtime_node_id: str | None = None,
    config: Path | None = None,
    contracts_dir: Path | None = None,
    kafka_client: Literal["kafka-python", "confluent"] | None = None,
    listen: str | None = None,
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO",
    log_format: Literal["text", "json"] = "text",
    workers: int = 1,
) -> int:
    """Run the runtime host RUNTIME_NODE_ID until stopped.

    Parameters
    ----------
    runtime_node_id
        Runtime-host contract to run (``contracts/runtime/<id>.yaml``). Default:
        ``runtime-dev``, or the tree's only runtime where it has no ``runtime-dev``.
    config
        Config file; values may be overridden by ``ONEX_...`` environment variables.
    contracts_dir
        Contract tree to read (overrides ``contracts_dir`` of the config).
    kafka_client
        Kafka client behind the bus (overrides ``kafka.client``): kafka-python or
        confluent (librdkafka).
    listen
        ``host:port`` of the HTTP listener (``/healthz``, ``/readyz``, ``/metrics``;
        overrides ``http.listen``).
    log_level
        Process log level (stderr).
    log_format
        ``text`` for people; ``json``: one JSON object per line, a runtime event's
        fields (``node_id``, ``correlation_id``...) as keys.
    workers
        Host processes to run (one per core): members of the runtime's consumer group,
        supervised by this process and stopped together on SIGINT or SIGTERM (needs
        ``bus.kind: kafka``). With ``--listen host:port`` worker ``i`` listens on
        ``port + i``.
    """
    logging.basicConfig(
        level=log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLogFormatter())
    quiet_foreign_loggers(log_level)
    overrides: dict[str, Any] = {}
    if contracts_dir is not None:
        overrides["contracts_dir"] = contracts_dir.resolve()
    if config is None and (local := from_project_root(Path("config/local.yaml"))).is_file():
        config = local
    if kafka_client is not None:
        overrides["kafka.client"] = kafka_client
    if listen is not None:
        overrides["http.listen"] = listen
    try:
        if workers < 1:
            raise ConfigError(f"--workers must be 1 or more, not {workers}")
        settings = load_config(config, environ=os.environ, overrides=overrides)
        if runtime_node_id is None:
            runtime_node_id = default_runtime(settings.contracts_dir)
            if runtime_node_id != DEFAULT_RUNTIME:
                logger.info(
                    "running %s, the one runtime of %s (--runtime-node-id picks another)",
                    runtime_node_id,
                    settings.contracts_dir,
                )
        if config is None and settings.bus.kind == "inprocess":
            logging.getLogger("onex_actors.host").warning(
                "no config file (config/local.yaml) and no ONEX_KAFKA__BOOTSTRAP_SERVERS: "
                "the in-process bus, which only this process reaches (onex emit cannot); "
                "pass --config, or set ONEX_KAFKA__BOOTSTRAP_SERVERS for a Kafka cluster"
            )
        if workers > 1:
            args = ["--runtime-node-id", runtime_node_id, "--log-level", log_level]
            args += ["--log-format", log_format]
            if config is not None:
                args += ["--config", str(config.resolve())]
            if contracts_dir is not None:
                args += ["--contracts-dir", str(contracts_dir.resolve())]
            if kafka_client is not None:
                args += ["--kafka-client", kafka_client]
            return run_workers(args, workers, runtime_node_id, settings)
        trio.run(serve, runtime_node_id, settings)
    except BaseException as exc:
        error = unwrap(exc)
        if isinstance(error, OnexError):
            return report(error)
        raise
    return 0


ASSIGNMENT_WAIT_S = 60.0
"""How long "ready" waits for the consumer's first partitions."""


async def serve(runtime_id: str, config: HostConfig) -> None:
    """Run the host until the first SIGINT or SIGTERM, then shut it down gracefully.

    A signal during start-up (a broker or PostgreSQL still starting) stops the start at
    once: nothing was consumed yet, so there is nothing to drain.
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        stop = trio.Event()
        starting = trio.CancelScope()

        async def on_signal() -> None:
            async for signum in signals:
                name = signal.Signals(signum).name
                if starting.cancel_called or stop.is_set():
                    continue
                print(f"received {name}: " + ("draining" if ready else "stopping"), flush=True)
                stop.set()
                if not ready:
                    starting.cancel()

        ready = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(on_signal)
            with starting:
                async with open_runtime_host(runtime_id, config) as host:
                    if await host.wait_assigned(ASSIGNMENT_WAIT_S):
                        logger.info("consumer group %s: partitions assigned", host.group_id)
                    else:
                        logger.warning(
                            "no partitions assigned within %g s (more members in group %s "
                            "than partitions?): ready without any",
                            ASSIGNMENT_WAIT_S,
                            host.group_id,
                        )
                    hosted = ", ".join(
                        f"{n.node_id} ({n.runs_as})" for n in host.table.hosted.values()
                    )
                    if host.listening:
                        logger.info("listening on %s", ", ".join(host.listening))
                    print(
                        f"runtime {host.table.runtime.contract_id} ready: hosting {hosted}; "
                        f"bus {config.bus.kind}{_client(config)}, consumer group {host.group_id}",
                        flush=True,
                    )
                    ready = True
                    await stop.wait()
            nursery.cancel_scope.cancel()
    if not ready:
        print(f"runtime {runtime_id} stopped before it was ready", flush=True)
        return
    print(f"runtime {runtime_id} stopped", flush=True)


FOREIGN_LOGGERS = (
    "kafka",
    "onex_actors.kafka.librdkafka",
    "asyncpg",
    "httpx2",
    "httpcore2",
    "trio_asyncio",
    "asyncio",
)
"""The libraries whose INFO lines (kafka-python writes hundreds at start-up) bury ours;
librdkafka's come through a logger of ours."""


def quiet_foreign_loggers(log_level: str) -> None:
    """Let the libraries under the host log warnings and errors only, unless at DEBUG."""
    if log_level == "DEBUG":
        return
    for name in FOREIGN_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logging.WARNING, logging.getLevelName(log_level)))


def _client(config: HostConfig) -> str:
    return f" ({config.kafka.client})" if config.bus.kind == "kafka" else ""


def host_main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``omninode-runtime-host``."""
    result = host_app(
        list(argv) if argv is not None else sys.argv[1:], result_action="return_value"
    )
    sys.exit(result if isinstance(result, int) else 0)
