"""Compiling SQL with ``:name`` parameters to asyncpg's ``$n`` placeholders (pure).

Parameters inside string literals, quoted identifiers, comments and dollar-quoted
strings are left alone, and so are ``::type`` casts. Values are always bound by the
driver; no SQL text is ever built from envelope data.
"""

from __future__ import annotations

import re
from typing import Final

import attrs

__all__ = ["CompiledSql", "compile_named_sql"]

_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG: Final = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_POSITIONAL: Final = re.compile(r"\$[0-9]+")


@attrs.frozen
class CompiledSql:
    """SQL with ``$1..$n`` placeholders and the parameter name bound to each."""

    text: str
    names: tuple[str, ...]


def compile_named_sql(sql: str) -> CompiledSql:
    """Replace each ``:name`` with ``$n`` (a repeated name reuses its number).

    Raises ``ValueError`` for an unterminated literal, identifier or comment, and for
    positional ``$1`` placeholders, which contracts do not allow.
    """
    out: list[str] = []
    names: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char in "'\"":
            end = _quoted_end(sql, i, char)
            out.append(sql[i:end])
            i = end
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise ValueError("db.sql has an unterminated /* comment")
            out.append(sql[i : end + 2])
            i = end + 2
        elif char == "$":
            i = _dollar(sql, i, out)
        elif sql.startswith("::", i):
            out.append("::")
            i += 2
        elif char == ":" and (name := _NAME.match(sql, i + 1)):
            if name.group() not in names:
                names.append(name.group())
            out.append(f"${names.index(name.group()) + 1}")
            i = name.end()
        else:
            out.append(char)
            i += 1
    return CompiledSql("".join(out), tuple(names))


def _quoted_end(sql: str, start: int, quote: str) -> int:
    i = start + 1
    while True:
        i = sql.find(quote, i)
        if i < 0:
            kind = "string literal" if quote == "'" else "quoted identifier"
            raise ValueError(f"db.sql has an unterminated {kind} starting at character {start}")
        if sql.startswith(quote * 2, i):
            i += 2
            continue
        return i + 1


def _dollar(sql: str, i: int, out: list[str]) -> int:
    if _POSITIONAL.match(sql, i):
        raise ValueError(
            "db.sql uses a positional placeholder like $1; use named parameters such as :user_id"
        )
    tag = _DOLLAR_TAG.match(sql, i)
    if tag is None:
        out.append("$")
        return i + 1
    end = sql.find(tag.group(), tag.end())
    if end < 0:
        raise ValueError(f"db.sql has an unterminated dollar-quoted string {tag.group()}")
    end += len(tag.group())
    out.append(sql[i:end])
    return end
