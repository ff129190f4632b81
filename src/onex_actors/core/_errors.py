"""The exception tree of onex-actors.

Every error the runtime raises on purpose is an ``OnexError``; bridges translate
client-library errors (kafka-python, httpx, asyncpg) into this tree, so callers never
need to catch a foreign exception type::

    OnexError
    ├── ContractError        a contract file or contract tree is invalid (file, key path)
    ├── TopicError           a topic name or topic pattern does not follow the grammar
    ├── EnvelopeError        a record is not a valid v1 envelope (not JSON, schema, size)
    └── ConfigError          a config file, environment variable or flag is invalid
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ConfigError", "ContractError", "EnvelopeError", "OnexError", "TopicError"]


class OnexError(Exception):
    """Base class of every error onex-actors raises on purpose."""


class ContractError(OnexError):
    """One or more problems in a contract file or a contract tree.

    ``problems`` holds one line per problem, each naming the file and key path
    where it was found; ``str()`` joins them.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        if not problems:
            raise ValueError("ContractError needs at least one problem")
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


class TopicError(OnexError, ValueError):
    """A topic name or topic pattern does not follow the onex topic grammar."""


class EnvelopeError(OnexError, ValueError):
    """A record could not be decoded into a valid v1 envelope.

    ``reason`` is a short machine-readable cause (``not_json``, ``schema``,
    ``oversize``, ``not_utf8``), used as the error type of the dead letter.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ConfigError(OnexError):
    """A configuration file, environment variable or command-line flag is invalid."""
