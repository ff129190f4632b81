"""The state stores behind ``KeyedStore``: memory and LMDB keep the same states; LMDB keeps
them across a clean stop through a checkpoint, and only through one."""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import wait_all_tasks_blocked

from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.bridges.lmdb import LmdbStates
from onex_actors.core import (
    BusError,
    ConfigError,
    KeyState,
    StateStoreError,
    cmd_topic,
    home_partition,
    new_command,
)
from onex_actors.runtime import (
    Checkpoint,
    KeyedStore,
    MemoryStates,
    OutboundRecord,
    PureOutcome,
    Record,
    ReducerHandler,
    StateRestorer,
    StateStore,
    TopicPartition,
)

from .test_keyed_store import tally, tally_handler

Step = tuple[str, str, int]


class _Folders:
    """Temporary LMDB folders, removed at the end (Hypothesis runs many examples)."""

    def __init__(self) -> None:
        self.made: list[Path] = []

    def new(self) -> Path:
        self.made.append(Path(tempfile.mkdtemp(prefix="onex-lmdb-")))
        return self.made[-1]

    def remove(self) -> None:
        for folder in self.made:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def folders() -> Iterator[_Folders]:
    made = _Folders()
    yield made
    made.remove()


STORES: dict[str, Callable[[_Folders], StateStore]] = {
    "memory": lambda _: MemoryStates(),
    "lmdb": lambda folders: LmdbStates(folders.new(), map_size=1 << 26),
}


@pytest.mark.parametrize("kind", sorted(STORES))
def test_both_stores_keep_what_the_model_keeps(kind: str, folders: _Folders) -> None:
    @settings(max_examples=150, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["put", "put", "put", "delete", "commit", "abort"]),
                st.sampled_from("xyz"),
                st.integers(0, 5),
            ),
            max_size=60,
        )
    )
    def run(steps: list[Step]) -> None:
        states = STORES[kind](folders)
        store = KeyedStore(states)
        committed: dict[str, int | None] = {}
        pending: list[tuple[int, str, int | None]] = []
        floor = next_offset = 0
        try:
            for step, key, number in steps:
                if step in ("put", "delete"):
                    value = number if step == "put" else None
                    state = KeyState({"n": value}) if value is not None else None
                    store.put(0, key, state, next_offset)
                    pending.append((next_offset, key, value))
                    next_offset += 1
                elif step == "commit":
                    floor = min(next_offset, floor + number)
                    store.committed(0, floor)
                    committed.update({k: v for o, k, v in pending if o < floor})
                    pending = [p for p in pending if p[0] >= floor]
                else:
                    store.discard(0)
                    pending = []
                    next_offset = floor
                for k in "xyz":
                    newest = [v for _, kk, v in pending if kk == k]
                    expected = newest[-1] if newest else committed.get(k)
                    got = store.get(0, k)
                    assert (got.value["n"] if got is not None else None) == expected
                held = {k: v for k, v in committed.items() if v is not None}
                assert store.keys_in(0) == len(held)
                assert {k: s.value["n"] for k, s in states.items(0)} == held
        finally:
            states.close()

    run()


def test_lmdb_keeps_a_checkpointed_partition_and_clears_the_others_when_reopened(
    tmp_path: Path,
) -> None:
    states = LmdbStates(tmp_path, map_size=1 << 26)
    states.write(0, {"a": KeyState({"n": 1}), "b": KeyState({"n": 2})})
    states.write(1, {"c": KeyState({"n": 3})})
    states.write(0, {"b": None})
    states.save_checkpoint(0, Checkpoint(17, 1000.0))
    states.close()
    again = LmdbStates(tmp_path, map_size=1 << 26)
    try:
        assert again.checkpoint(0) == Checkpoint(17, 1000.0)
        assert dict(again.items(0)) == {"a": KeyState({"n": 1})}
        assert again.count(0) == 1
        # partition 1 had no checkpoint: its process did not stop cleanly, so its states
        # may be ahead of or behind its changelog; they are not trusted
        assert again.checkpoint(1) is None
        assert again.count(1) == 0
        assert again.get(1, "c") is None
        again.forget_checkpoint(0)
        assert again.checkpoint(0) is None
    finally:
        again.close()


def test_lmdb_refuses_a_second_process_on_its_folder(tmp_path: Path) -> None:
    states = LmdbStates(tmp_path, map_size=1 << 26)
    try:
        with pytest.raises(ConfigError, match=r"open in another process.*state\.path"):
            LmdbStates(tmp_path, map_size=1 << 26)
    finally:
        states.close()
    LmdbStates(tmp_path, map_size=1 << 26).close()  # free again once closed


def test_lmdb_that_cannot_write_says_where_and_keeps_what_it_had(tmp_path: Path) -> None:
    states = LmdbStates(tmp_path, map_size=1 << 20)  # a full disk acts the same: no room
    try:
        states.write(0, {"kept": KeyState({"n": 1})})
        big = {f"k{i}": KeyState({"text": "x" * 4000}) for i in range(400)}
        with pytest.raises(
            StateStoreError,
            match=rf"state store in {tmp_path} could not write 400 state\(s\) of partition 0: "
            r".*state\.map_size_gib",
        ):
            states.write(0, big)
        assert dict(states.items(0)) == {"kept": KeyState({"n": 1})}  # nothing of it kept
        assert states.count(0) == 1
    finally:
        states.close()


def _fold(handler: ReducerHandler, bus_log: list[OutboundRecord], offset: int) -> None:
    """Decide one tally command of key ``a`` at ``offset`` and commit it (changelog kept)."""
    home = home_partition(b"global/a", 4)
    record = Record(cmd_topic("tally"), home, offset, b"global/a", b"{}")
    (outcome,) = handler.decide_batch([(new_command("tally", {"k": "a"}), record)])
    assert isinstance(outcome, PureOutcome)
    bus_log.extend(outcome.records)
    handler.store.committed(home, offset + 1)


async def _write_changelog(bus: InProcessBus, records: list[OutboundRecord]) -> None:
    await bus.publish(records)


async def test_a_checkpointed_partition_reads_only_the_changelog_after_it(
    tmp_path: Path,
) -> None:
    bus = InProcessBus(partitions=4)
    home = home_partition(b"global/a", 4)
    tp = TopicPartition(cmd_topic("tally"), home)
    written: list[OutboundRecord] = []

    handler = tally_handler(tally(), LmdbStates(tmp_path, map_size=1 << 26))
    restorer = StateRestorer(bus, {"tally": handler})
    await restorer.restore(handler, tp)
    for offset in range(3):
        _fold(handler, written, offset)
    await _write_changelog(bus, written)
    assert await restorer.checkpoint() == 1
    await handler.aclose()

    # another host folds two more commands meanwhile: only they are read at the restart
    other = tally_handler(tally())
    other_restorer = StateRestorer(bus, {"tally": other})
    await other_restorer.restore(other, tp)
    more: list[OutboundRecord] = []
    for offset in range(3, 5):
        _fold(other, more, offset)
    await _write_changelog(bus, more)

    again = tally_handler(tally(), LmdbStates(tmp_path, map_size=1 << 26))
    again_restorer = StateRestorer(bus, {"tally": again})
    await again_restorer.restore(again, tp)
    (report,) = again_restorer.restores
    assert (report.start, report.records) == (3, 2)
    state = again.store.get(home, "global/a")
    assert state is not None
    assert state.value == {"n": 5}
    # the checkpoint is gone once the partition is served: a crash from here on restores
    # the partition whole
    assert again.store.states.checkpoint(home) is None
    await again.aclose()


@pytest.mark.parametrize("problem", ["too_old", "past_the_end"])
async def test_a_checkpoint_that_cannot_be_trusted_restores_the_partition_whole(
    tmp_path: Path, problem: str
) -> None:
    bus = InProcessBus(partitions=4)
    home = home_partition(b"global/a", 4)
    tp = TopicPartition(cmd_topic("tally"), home)
    written: list[OutboundRecord] = []
    handler = tally_handler(tally(), LmdbStates(tmp_path, map_size=1 << 26))
    restorer = StateRestorer(bus, {"tally": handler})
    await restorer.restore(handler, tp)
    for offset in range(2):
        _fold(handler, written, offset)
    await _write_changelog(bus, written)
    saved_at = 1000.0 if problem == "too_old" else 2000.0
    offset = 2 if problem == "too_old" else 99  # 99: the changelog was recreated
    handler.store.states.save_checkpoint(home, Checkpoint(offset, saved_at))
    await handler.aclose()

    again = tally_handler(tally(), LmdbStates(tmp_path, map_size=1 << 26))
    again_restorer = StateRestorer(
        bus, {"tally": again}, checkpoint_max_age_s=500, clock=lambda: 2001.0
    )
    await again_restorer.restore(again, tp)
    (report,) = again_restorer.restores
    assert (report.start, report.records, report.keys) == (0, 2, 1)
    state = again.store.get(home, "global/a")
    assert state is not None
    assert state.value == {"n": 2}
    await again.aclose()


async def test_a_partition_revoked_while_its_restore_reads_is_restored_afresh_when_back() -> None:
    bus = InProcessBus(partitions=4)
    home = home_partition(b"global/a", 4)
    tp = TopicPartition(cmd_topic("tally"), home)
    first: list[OutboundRecord] = []
    writer = tally_handler(tally())
    await StateRestorer(bus, {"tally": writer}).restore(writer, tp)
    for offset in range(2):
        _fold(writer, first, offset)
    await _write_changelog(bus, first)

    reading = trio.Event()
    go_on = trio.Event()

    async def settled() -> None:  # the host's last round still commits: wait for it
        reading.set()
        await go_on.wait()

    handler = tally_handler(tally())
    restorer = StateRestorer(bus, {"tally": handler}, settled=settled)
    restorer.assigned([tp])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(restorer.run)
        await reading.wait()
        restorer.revoked([tp])  # the group takes it away meanwhile
        go_on.set()
        await wait_all_tasks_blocked()
        assert home not in handler.store.owned  # not served from what it read
        # records of it fetched before it went are not a reason to restore it
        await restorer.ready([Record(tp.topic, home, 2, b"global/a", b"{}")])
        assert home not in handler.store.owned
        # its other owner folds two more, then it comes back: restored with them
        more: list[OutboundRecord] = []
        for offset in range(2, 4):
            _fold(writer, more, offset)
        await _write_changelog(bus, more)
        restorer.assigned([tp])
        await wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert home in handler.store.owned
    state = handler.store.get(home, "global/a")
    assert state is not None
    assert state.value == {"n": 4}
    assert [report.records for report in restorer.restores] == [4]


class _UnansweredBus(InProcessBus):
    """An in-process bus whose changelog reads fail, ``failures`` of them (brokers away).

    Each failed read hands over its first record before it fails, as a read cut off
    part-way does.
    """

    def __init__(self) -> None:
        super().__init__(partitions=4)
        self.failures = 0.0
        self.reads = 0

    async def read_changelog(
        self,
        topic: str,
        partition: int,
        apply: Callable[[Sequence[Record]], None],
        *,
        start: int = 0,
    ) -> int:
        self.reads += 1
        if self.reads <= self.failures:

            def first_only(records: Sequence[Record]) -> None:
                apply(records[:1])

            await super().read_changelog(topic, partition, first_only, start=start)
            raise BusError(f"restoring {topic}[{partition}] failed: KafkaTimeoutError")
        return await super().read_changelog(topic, partition, apply, start=start)


async def _written_twice(bus: InProcessBus) -> TopicPartition:
    """Fold key ``a`` twice into ``bus``'s changelog; return its command partition."""
    tp = TopicPartition(cmd_topic("tally"), home_partition(b"global/a", 4))
    written: list[OutboundRecord] = []
    writer = tally_handler(tally())
    await StateRestorer(bus, {"tally": writer}).restore(writer, tp)
    for offset in range(2):
        _fold(writer, written, offset)
    await _write_changelog(bus, written)
    return tp


async def _never_answered() -> tuple[_UnansweredBus, TopicPartition, ReducerHandler, StateRestorer]:
    """A changelog of key ``a`` whose reads fail from now on, and a restorer of it."""
    bus = _UnansweredBus()
    tp = await _written_twice(bus)
    bus.failures = math.inf
    handler = tally_handler(tally())
    return bus, tp, handler, StateRestorer(bus, {"tally": handler})


async def test_a_restore_the_brokers_do_not_answer_is_tried_again_until_it_reads(
    autojump_clock: trio.abc.Clock,
) -> None:
    bus = _UnansweredBus()
    tp = await _written_twice(bus)
    bus.failures, bus.reads = 3, 0
    handler = tally_handler(tally())
    restorer = StateRestorer(bus, {"tally": handler})
    started = trio.current_time()

    await restorer.restore(handler, tp)

    assert trio.current_time() - started == pytest.approx(0.5 + 1 + 2)
    assert (restorer.retries["tally"], bus.reads) == (3, 4)
    assert tp.partition in handler.store.owned
    state = handler.store.get(tp.partition, "global/a")
    assert state is not None
    assert state.value == {"n": 2}  # what the failed reads handed over is not kept
    (report,) = restorer.restores
    assert (report.records, report.keys) == (2, 1)


async def test_a_restore_failing_for_five_minutes_stops_the_host_with_its_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    _, tp, handler, restorer = await _never_answered()
    started = trio.current_time()

    with pytest.raises(BusError, match=r"tally partition \d: not restored after 300 s of tries"):
        await restorer.restore(handler, tp)

    assert 290 <= trio.current_time() - started <= 300
    assert tp.partition not in handler.store.owned
    assert tp not in restorer.restoring


async def test_a_partition_revoked_while_its_restore_is_tried_again_is_left_alone(
    autojump_clock: trio.abc.Clock,
) -> None:
    bus, tp, handler, restorer = await _never_answered()
    restorer.assigned([tp])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(restorer.run)
        await trio.sleep(0.6)  # failed at 0 s and at 0.5 s: waiting 1 s now
        assert restorer.retries["tally"] == 2
        restorer.revoked([tp])
        await trio.sleep(20)  # past the wait: the restore sees the revocation and ends
        assert tp not in restorer.restoring
        reads = bus.reads
        await trio.sleep(60)
        assert bus.reads == reads  # not tried again
        nursery.cancel_scope.cancel()
    assert tp.partition not in handler.store.owned
    assert restorer.restores == []
