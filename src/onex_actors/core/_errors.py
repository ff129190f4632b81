"""The exception tree of onex-actors.

Every error the runtime raises on purpose is an ``OnexError``; bridges translate
client-library errors (kafka-python, httpx2, asyncpg) into this tree, so callers never
need to catch a foreign exception type::

    OnexError
    ├── ContractError        a contract file or contract tree is invalid (file, key path)
    ├── TopicError           a topic name or topic pattern does not follow the grammar
    ├── EnvelopeError        a record is not a valid v1 envelope (not JSON, schema, size)
    ├── ConfigError          a config file, environment variable or flag is invalid
    ├── HandlerError         a handler could not do its work (retryable or not)
    └── BusError             a bus (Kafka, in-process) failed to consume or produce
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BusError",
    "ConfigError",
    "ContractError",
    "EnvelopeError",
    "HandlerError",
    "OnexError",
    "TopicError",
]


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

    ``reason`` is a short machine-readable cause (``no_value``, ``not_json``,
    ``schema``, ``oversize``, ``unreadable_record``, ``result_too_large``), used as the
    error type of the dead letter.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ConfigError(OnexError):
    """A configuration file, environment variable or command-line flag is invalid."""


class HandlerError(OnexError):
    """A handler failed to do its work for one envelope.

    ``error_type`` names the cause (``http_status``, ``timeout``...) and becomes the
    ``error.type`` of the error event; ``retryable`` says whether trying again may help,
    and ``retry_after_s`` how long the other side asked to wait first (``Retry-After``).
    Any other exception escaping a handler is a bug: it crashes the node actor, and the
    supervisor restarts it.
    """

    def __init__(
        self,
        message: str,
        *,
        error_type: str,
        retryable: bool,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.retryable = retryable
        self.retry_after_s = retry_after_s

    def detached(self) -> HandlerError:
        """Return this error without its traceback and the error it replaced.

        For an error kept as a value past its ``except`` (an envelope's answer): its
        traceback holds the frame that caught it, and so a cycle only the cyclic
        collector frees, with the envelope in it. The answer needs only the message,
        ``error_type`` and ``retryable``.
        """
        self.__traceback__ = None
        self.__context__ = None
        self.__cause__ = None
        return self


class BusError(OnexError):
    """A bus could not consume or produce (broker unreachable, topic missing...).

    ``reason`` is a short machine-readable cause (``produce_failed``,
    ``result_too_large``, ``consumer_stalled``...).
    """

    def __init__(self, message: str, *, reason: str = "bus_error") -> None:
        super().__init__(message)
        self.reason = reason


class StateStoreError(OnexError):
    """A reducer's on-disk state store could not be written (a full disk, a full map).

    The host stops: what the store lost is in the changelog, and the partitions are
    restored from it after a restart.
    """


class TransactionAborted(BusError):
    """A Kafka transaction could not commit and was aborted: none of it became visible.

    Not fatal: its input records are read again from the last committed offsets (the
    group rebalanced and fenced the old generation's commit, a send in it failed).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="transaction_aborted")
