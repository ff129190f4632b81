"""Turning failures into one clear line per problem on stderr."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from onex_actors.core import ConfigError, ContractError, OnexError

__all__ = ["as_onex_error", "report", "unwrap"]


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
