"""The core's ``uuid5`` gives the standard library's ids: outputs' ids do not change."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from onex_actors.core._uuid5 import uuid5


@given(st.uuids(), st.text())
def test_the_same_id_as_the_standard_library(namespace: uuid.UUID, name: str) -> None:
    made, expected = uuid5(namespace, name), uuid.uuid5(namespace, name)
    assert made == expected
    assert str(made) == str(expected)
    assert made.version == 5
    assert made.variant == uuid.RFC_4122
    assert hash(made) == hash(expected)
    assert made.is_safe is expected.is_safe


def test_a_known_id() -> None:
    """RFC 4122's example namespace: the DNS name ``python.org``."""
    assert str(uuid5(uuid.NAMESPACE_DNS, "python.org")) == "886313e1-3b8a-5372-9b90-0c9aee199e5d"
