"""The round decisions, pure, against a model of one partition's log (Hypothesis).

Any interleaving of reads, completions in any order, rounds and read-agains (an abort or
a revocation) over one partition: an output is committed only with its input's offset,
no offset is committed past an unfinished record, and once everything is done each
record's output has been committed exactly once.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from onex_actors.core import Fate, PartitionOffsets, PartitionUnit, fate_of

LOG = 12
"""Records in the partition's log."""

Step = tuple[str, int]


@st.composite
def steps(draw: st.DrawFn) -> list[Step]:
    kinds = st.sampled_from(["read", "read", "read", "done", "done", "round", "read_again"])
    return draw(st.lists(st.tuples(kinds, st.integers(0, LOG)), max_size=80))


class Model:
    """One partition read by a member whose outputs wait for a round (exactly once)."""

    def __init__(self) -> None:
        self.unit: PartitionUnit[str] = PartitionUnit("p0")
        self.unit.assign()
        self.position = 0
        """The next offset the consumer reads."""
        self.in_flight: list[tuple[PartitionOffsets, int]] = []
        self.held: list[tuple[PartitionOffsets, int]] = []
        """Outputs waiting for a round: (what settles their input, its offset)."""
        self.committed_outputs: list[int] = []

    def read(self) -> None:
        if self.position < LOG:
            offsets = self.unit.track(self.position)
            self.in_flight.append((offsets, self.position))
            self.position += 1

    def done(self, pick: int) -> None:
        if self.in_flight:
            offsets, offset = self.in_flight.pop(pick % len(self.in_flight))
            offsets.done(offset)
            self.held.append((offsets, offset))

    def round(self) -> None:
        due = self.unit.due()
        unfinished = [o for offsets, o in self.in_flight if not offsets.retired]
        if due is not None:
            assert all(due <= o for o in unfinished), "a commit past an unfinished record"
        riding, waiting = [], []
        for offsets, offset in self.held:
            fate = fate_of([(offsets, offset)])
            if fate is Fate.RIDES:
                assert due is not None, "an output rides a round that commits nothing"
                assert offset < due, "an output committed without its input's offset"
                riding.append(offset)
            elif fate is Fate.WAITS:
                waiting.append((offsets, offset))
        self.held = waiting
        if due is not None:
            self.unit.committed = due
        self.committed_outputs += riding

    def read_again(self) -> None:
        self.unit.read_again()
        self.held = [(o, n) for o, n in self.held if fate_of([(o, n)]) is not Fate.VOID]
        self.in_flight = []
        self.position = max(self.unit.committed, 0)

    def finish(self) -> None:
        """Read and complete everything, then commit."""
        for _ in range(3 * LOG):
            self.read()
            while self.in_flight:
                self.done(0)
            self.round()


@settings(max_examples=300, deadline=None)
@given(steps())
def test_every_output_is_committed_once_with_its_inputs_offset(plan: list[Step]) -> None:
    model = Model()
    for kind, arg in plan:
        if kind == "read":
            model.read()
        elif kind == "done":
            model.done(arg)
        elif kind == "round":
            model.round()
        else:
            model.read_again()
    model.finish()
    assert sorted(model.committed_outputs) == list(range(LOG))
    assert model.unit.committed == LOG


def test_an_output_of_a_partition_read_again_is_void() -> None:
    unit: PartitionUnit[str] = PartitionUnit("p0")
    offsets = unit.track(0)
    offsets.done(0)
    assert fate_of([(offsets, 0)]) is Fate.RIDES
    unit.read_again()
    assert fate_of([(offsets, 0)]) is Fate.VOID


def test_an_output_waits_for_every_earlier_record_of_its_partition() -> None:
    unit: PartitionUnit[str] = PartitionUnit("p0")
    first, second = unit.track(0), unit.track(1)
    second.done(1)
    assert fate_of([(second, 1)]) is Fate.WAITS
    first.done(0)
    assert fate_of([(second, 1)]) is Fate.RIDES
    assert unit.due() == 2
