"""``KeyedStore``: writes stay pending until their input offset is committed; a read-again
puts every key back at its last committed state without reading the changelog again."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from onex_actors.core import KeyState
from onex_actors.runtime import KeyedStore, Record

Step = tuple[str, str, int]


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["put", "put", "put", "commit", "abort"]),
            st.sampled_from("xyz"),
            st.integers(0, 5),
        ),
        max_size=80,
    )
)
def test_reads_see_the_newest_write_and_an_abort_returns_to_the_last_commit(
    steps: list[Step],
) -> None:
    store = KeyedStore()
    committed: dict[str, int] = {}  # the model: the value each key committed
    pending: list[tuple[int, str, int]] = []  # (input offset, key, value), in write order
    floor = next_offset = 0
    for kind, key, number in steps:
        if kind == "put":
            store.put(0, key, KeyState({"n": number}), next_offset)
            pending.append((next_offset, key, number))
            next_offset += 1
        elif kind == "commit":  # everything read up to some point is done and committed
            floor = min(next_offset, floor + number)
            store.committed(0, floor)
            committed.update({k: value for offset, k, value in pending if offset < floor})
            pending = [p for p in pending if p[0] >= floor]
        else:  # a transaction aborted: read again from the last commit
            store.discard(0)
            pending = []
            next_offset = floor
        for k in "xyz":
            newest = [value for _, kk, value in pending if kk == k]
            expected = newest[-1] if newest else committed.get(k)
            state = store.get(0, k)
            assert (state.value["n"] if state is not None else None) == expected


def test_a_restore_takes_each_keys_newest_record_and_tombstones_delete() -> None:
    store = KeyedStore()

    def record(offset: int, key: bytes | None, value: bytes | None) -> Record:
        return Record("state", 2, offset, key, value)

    unreadable = store.load(
        2,
        [
            record(0, b"a", KeyState({"n": 1}).to_bytes()),
            record(1, b"b", KeyState({"n": 2}).to_bytes()),
            record(2, b"a", KeyState({"n": 3}).to_bytes()),
            record(3, b"b", None),
            record(4, b"c", b"not json"),
            record(5, None, KeyState({"n": 9}).to_bytes()),
        ],
    )
    assert unreadable == 2
    assert store.get(2, "a") == KeyState({"n": 3})
    assert store.get(2, "b") is None
    assert store.get(2, "c") is None
    assert store.keys_in(2) == 1
    store.drop(2)
    assert store.get(2, "a") is None
