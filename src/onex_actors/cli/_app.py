"""The ``onex`` command line."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import cyclopts

from onex_actors import __version__

from ._broker import broker_app
from ._call import call
from ._client import emit, tail
from ._contracts import contracts_app
from ._errors import cli_error_formatter
from ._host import run_host
from ._state import state
from ._status import status

__all__ = ["app", "main"]

app = cyclopts.App(
    name="onex",
    help="onex-actors client: validate contracts, send commands, follow topics, call a node "
    "in-process.",
    version=__version__,
    error_formatter=cli_error_formatter("onex"),
)
app.command(contracts_app)
app.command(broker_app)
app.command(emit)
app.command(tail)
app.command(state)
app.command(call)
app.command(status)
app.command(run_host, name="host")  # omninode-runtime-host, as a command of onex too


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``onex`` and exit with the command's status."""
    result = app(list(argv) if argv is not None else sys.argv[1:], result_action="return_value")
    sys.exit(result if isinstance(result, int) else 0)
