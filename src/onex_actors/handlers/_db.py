"""``DbHandler``: one SQL statement per command, parameters bound from the envelope."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

from onex_actors.bridges.postgres import PostgresPool
from onex_actors.core import DbEffect, HandlerError, JsonPath, MissingValue, OnexEnvelope
from onex_actors.runtime import HandlerHealth

__all__ = ["DbHandler", "json_safe"]


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


class DbHandler:
    """Runs the node's statement with values bound from JSONPath expressions.

    Values are always bound as parameters; no SQL text is built from envelope data.
    Returns ``{"rows": [...], "rowcount": n, "status": "..."}``.
    """

    def __init__(self, effect: DbEffect, pool: PostgresPool) -> None:
        compiled = effect.compiled
        self.sql = compiled.text
        self.bindings = tuple((name, JsonPath(effect.params[name])) for name in compiled.names)
        self.pool = pool

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        """Run the statement for ``envelope``."""
        document = envelope.model_dump(mode="json")
        args: list[JsonValue] = []
        for name, path in self.bindings:
            try:
                args.append(path.resolve(document))
            except MissingValue as exc:
                raise HandlerError(
                    f"parameter :{name}: {exc}", error_type="missing_parameter", retryable=False
                ) from None
        rows, status = await self.pool.run(self.sql, args)
        return {
            "rows": [json_safe(dict(row)) for row in rows],
            "rowcount": _rowcount(status, len(rows)),
            "status": status,
        }

    async def health_check(self) -> HandlerHealth:
        """Ping the database."""
        try:
            await self.pool.ping()
        except HandlerError as exc:
            return HandlerHealth(healthy=False, detail=str(exc))
        return HandlerHealth(healthy=True, detail=f"pool size {self.pool.size()}")

    async def aclose(self) -> None:
        """Do nothing: pools are shared per connection and closed by their owner."""


def _rowcount(status: str, returned: int) -> int:
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else returned
