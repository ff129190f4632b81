"""``DbHandler``: one SQL statement per command, parameters bound from the envelope."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import JsonValue

from onex_actors.core import (
    DbEffect,
    DurableIdempotency,
    HandlerError,
    JsonPath,
    MissingValue,
    OnexEnvelope,
)
from onex_actors.runtime import AnswerStore, HandlerHealth, SqlPool

from ._recorded import AnswerPruner

__all__ = ["DbHandler", "bind", "json_safe"]


def json_safe(value: Any) -> JsonValue:
    """Convert a value asyncpg returned into JSON.

    UUID, Decimal and other exact types become strings; date/time values ISO 8601
    strings; intervals seconds; bytes base64; composite records objects; arrays lists.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping) or hasattr(value, "items"):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


_INTEGER_TYPES = frozenset({"int2", "int4", "int8", "oid"})
_NUMBER_TYPES = frozenset({"numeric", "float4", "float8", "money"}) | _INTEGER_TYPES
_JSON_TYPES = frozenset({"json", "jsonb"})


def bind(name: str, value: JsonValue, type_name: str) -> object:
    """Return ``value`` as bound to a parameter of PostgreSQL type ``type_name``.

    Coercion is explicit: a bool or a float is refused where an integer is bound (asyncpg
    would turn ``1.5`` and ``true`` into ``1``), a bool where a number is bound; a JSON
    value bound to ``json``/``jsonb`` is sent as JSON text. Other mismatches are left to
    asyncpg, whose ``DataError`` is a non-retryable handler error too.
    """
    if value is None:
        return None
    if type_name in _NUMBER_TYPES and isinstance(value, bool):
        raise _invalid(name, value, type_name, "a boolean")
    if type_name in _INTEGER_TYPES and isinstance(value, float):
        raise _invalid(name, value, type_name, "a number with a fraction or exponent")
    if type_name in _JSON_TYPES:
        return json.dumps(value)
    return value


_POSITIONAL = re.compile(r"\$(\d+)")


def _invalid(name: str, value: JsonValue, type_name: str, what: str) -> HandlerError:
    return HandlerError(
        f"parameter :{name} is bound to PostgreSQL type {type_name} and got {value!r}, "
        f"{what}: send a value of that type",
        error_type="invalid_parameter",
        retryable=False,
    )


class DbHandler:
    """Runs the node's statement with values bound from JSONPath expressions.

    Values are always bound as parameters; no SQL text is built from envelope data.
    Each value is checked against its parameter's type (read from the database once).
    Returns ``{"rows": [...], "rowcount": n, "status": "..."}``. With ``durable`` (and
    the pool as its ``AnswerStore``) the answer is recorded in the statement's own
    transaction, and a redelivered command is answered from the record instead.
    """

    def __init__(
        self,
        effect: DbEffect,
        pool: SqlPool,
        *,
        node_id: str | None = None,
        durable: DurableIdempotency | None = None,
        store: AnswerStore | None = None,
    ) -> None:
        compiled = effect.compiled
        self.sql = compiled.text
        self.bindings = tuple((name, JsonPath(effect.params[name])) for name in compiled.names)
        self.pool = pool
        self._types: tuple[str, ...] | None = None
        self.node_id = node_id
        self.store = store if durable is not None else None
        self.pruner = (
            AnswerPruner(store, node_id, durable)
            if durable is not None and store is not None and node_id is not None
            else None
        )
        self.recalled = 0
        """Commands answered from the durable record instead of executed."""

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        """Run the statement for ``envelope``."""
        document = envelope.model_dump(mode="json")
        values: list[JsonValue] = []
        for name, path in self.bindings:
            try:
                values.append(path.resolve(document))
            except MissingValue as exc:
                raise HandlerError(
                    f"parameter :{name}: {exc}", error_type="missing_parameter", retryable=False
                ) from None
        if self._types is None:
            self._types = await self.pool.parameter_types(self.sql)
        args = [
            bind(name, value, type_name)
            for (name, _), value, type_name in zip(self.bindings, values, self._types, strict=True)
        ]
        try:
            if self.store is not None and self.node_id is not None:
                if self.pruner is not None:
                    await self.pruner.maybe_prune()
                answer, recalled = await self.store.run_once(
                    self.node_id, envelope.envelope_id, self.sql, args, _answer_of
                )
                self.recalled += recalled
                return answer
            rows, status = await self.pool.run(self.sql, args)
        except HandlerError as exc:
            raise self._named(exc) from None
        return _answer_of(rows, status)

    def _named(self, error: HandlerError) -> HandlerError:
        """``error`` with the driver's ``$1`` as the contract's ``:name`` (what the user wrote)."""
        names = [name for name, _ in self.bindings]

        def named(match: re.Match[str]) -> str:
            index = int(match.group(1)) - 1
            return f":{names[index]}" if 0 <= index < len(names) else match.group(0)

        message = _POSITIONAL.sub(named, str(error))
        return HandlerError(message, error_type=error.error_type, retryable=error.retryable)

    async def health_check(self) -> HandlerHealth:
        """Ping the database."""
        try:
            await self.pool.ping()
        except HandlerError as exc:
            return HandlerHealth(healthy=False, detail=str(exc))
        return HandlerHealth(healthy=True, detail=f"pool size {self.pool.size()}")

    async def aclose(self) -> None:
        """Do nothing: pools are shared per connection and closed by their owner."""


def _answer_of(rows: Sequence[Mapping[str, object]], status: str) -> Mapping[str, JsonValue]:
    return {
        "rows": [json_safe(dict(row)) for row in rows],
        "rowcount": _rowcount(status, len(rows)),
        "status": status,
    }


def _rowcount(status: str, returned: int) -> int:
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else returned
