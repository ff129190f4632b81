"""Turning failures into one clear line per problem on stderr."""

from __future__ import annotations

import sys

from onex_actors.core import ContractError, OnexError

__all__ = ["report", "unwrap"]


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
