"""``onex broker up|down|status``: the local Kafka broker for development and tests."""

from __future__ import annotations

from pathlib import Path

import cyclopts

from onex_actors.bridges.kafka import LocalKafka, broker_answers
from onex_actors.core import OnexError

from ._errors import report

__all__ = ["broker_app"]

broker_app = cyclopts.App(name="broker", help="Run a local Apache Kafka broker on 127.0.0.1.")


def _broker(port: int, home: Path) -> LocalKafka:
    return LocalKafka(home=home, port=port, controller_port=port + 1)


@broker_app.command
def up(*, port: int = 9092, home: Path = Path(".cache/kafka")) -> int:
    """Start the broker unless one answers on PORT (idempotent).

    Parameters
    ----------
    port
        Client port on 127.0.0.1 (the controller uses PORT+1).
    home
        Where jars, data and logs live.
    """
    broker = _broker(port, home)
    try:
        bootstrap = broker.start()
    except OnexError as exc:
        return report(exc)
    print(f"kafka broker ready on {bootstrap}")
    return 0


@broker_app.command
def down(*, port: int = 9092, home: Path = Path(".cache/kafka")) -> int:
    """Stop the broker started by ``onex broker up`` on PORT (idempotent).

    Parameters
    ----------
    port
        Client port of the broker.
    home
        Where jars, data and logs live.
    """
    _broker(port, home).stop()
    print(f"kafka broker on 127.0.0.1:{port} stopped")
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
