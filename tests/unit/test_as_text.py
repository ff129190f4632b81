"""Ids and times written by msgspec read exactly as the standard library writes them.

State records and snapshots keep these texts, and a replayed input must give the same
bytes, so the faster writers may never differ from ``str`` and ``isoformat``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pydantic
from hypothesis import given
from hypothesis import strategies as st

from onex_actors.core import time_text, uuid_bytes, uuid_text
from onex_actors.core._uuid5 import uuid5


@given(st.uuids(version=None) | st.builds(uuid5, st.uuids(), st.text()))
def test_an_id_reads_as_str_gives_it(value: uuid.UUID) -> None:
    assert uuid_text(value) == str(value)
    assert uuid_bytes(value) == str(value).encode()


_OFFSETS = st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))


@given(
    st.datetimes(timezones=st.just(UTC) | st.builds(timezone, _OFFSETS) | st.none()),
)
def test_a_time_reads_as_isoformat_gives_it(value: datetime) -> None:
    assert time_text(value) == value.isoformat()


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_time_pydantic_parsed_reads_as_isoformat_gives_it(value: datetime) -> None:
    """pydantic's UTC is its own ``TzInfo``, not ``datetime.UTC``: the same text."""
    parsed = pydantic.TypeAdapter(datetime).validate_python(
        value.isoformat().replace("+00:00", "Z")
    )
    assert parsed.tzinfo is not UTC
    assert time_text(parsed) == parsed.isoformat() == value.isoformat()
