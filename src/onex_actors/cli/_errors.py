"""Turning failures into one clear line per problem on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable

import cyclopts
from cyclopts.exceptions import UnusedCliTokensError
from pydantic import ValidationError

from onex_actors.core import ConfigError, ContractError, OnexError

__all__ = ["as_onex_error", "cli_error_formatter", "report", "unwrap"]


def unwrap(exc: BaseException) -> BaseException:
    """Return the single error inside nested one-member exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def report(exc: OnexError) -> int:
    """Print ``exc`` as ``error: ...`` lines and return the exit status 1."""
    lines = exc.problems if isinstance(exc, ContractError) else str(exc).splitlines()
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    return 1


def as_onex_error(exc: ValueError) -> ConfigError:
    """Return a ``ValueError`` from a caller's input as a ``ConfigError``, one line a problem.

    pydantic's own text spans lines and ends in a URL; here each error is the field, what
    is wrong with it, and what was given.
    """
    if not isinstance(exc, ValidationError):
        return ConfigError(str(exc))
    return ConfigError(
        "\n".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'value'}: "
            f"{error['msg'].removeprefix('Value error, ')} (given {error['input']!r})"
            for error in exc.errors(include_url=False)
        )
    )


_PAYLOAD_COMMANDS = frozenset({"call", "emit"})
"""Commands whose PAYLOAD argument, left unquoted, splits into several."""


def cli_error_formatter(program: str) -> Callable[[cyclopts.CycloptsError], object]:
    """Return the ``error_formatter`` of ``program``'s cyclopts app (a line it cannot parse).

    Arguments left over read "Unused Tokens: [...]" in cyclopts' words; here they name
    the command, the arguments it did not take, and where its usage is. Other errors
    keep cyclopts' panel.
    """

    def panel(error: cyclopts.CycloptsError) -> object:
        if isinstance(error, UnusedCliTokensError) and error.unused_tokens:
            chain = error.command_chain or ()
            command = " ".join([program, *chain])
            extra = ", ".join(repr(token) for token in error.unused_tokens)
            plural = "s" if len(error.unused_tokens) > 1 else ""
            takes_payload = bool(chain) and chain[-1] in _PAYLOAD_COMMANDS
            quote = " (a JSON payload is one argument: quote it)" if takes_payload else ""
            return cyclopts.CycloptsPanel(
                f"{command}: unexpected argument{plural} {extra}: more than the command "
                f"takes{quote}. Its usage: {command} --help"
            )
        return cyclopts.CycloptsPanel(error)

    return panel
