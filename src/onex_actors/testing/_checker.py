"""A delivery checker in the spirit of Jepsen's Kafka checker.

Every command record a workload sends is remembered (its partition and offset, its
envelope id when it is an envelope, and a key and sequence number for ordering).
After the run, every result event and dead letter is read back, and :func:`check`
accounts for each sent record: lost (no evt and no dlq), duplicated (answered more
than once), reordered (per key, first answers out of send order).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import attrs

from onex_actors.core import EnvelopeType, OnexEnvelope

__all__ = ["DeliveryReport", "Outcome", "SentRecord", "check", "outcome_of", "render_reports"]


@attrs.frozen
class SentRecord:
    """One record a workload put on a command topic."""

    partition: int
    offset: int
    envelope_id: str | None = None
    """None for a record that is not an envelope at all (fuzzing)."""
    key: str | None = None
    """Its order group: the partition key, qualified by the node (a topic's own order)."""
    seq: int | None = None
    """Position of the record among those of its key, for the reorder check."""


@attrs.frozen
class Outcome:
    """One result event or dead letter read back after a run."""

    kind: Literal["evt", "dlq"]
    position: tuple[int, int]
    """Partition and offset of the outcome in its own topic (its order there)."""
    cause: str | None
    """The command's envelope id (``causation_id``), if the command was an envelope."""
    source: tuple[int, int] | None = None
    """Partition and offset of the command record, as a dead letter reports it."""
    error: str | None = None


def outcome_of(envelope: OnexEnvelope, partition: int, offset: int) -> Outcome | None:
    """Turn an envelope read from an evt or dlq topic into an ``Outcome`` (None otherwise)."""
    if envelope.type is EnvelopeType.EVT:
        kind: Literal["evt", "dlq"] = "evt"
    elif envelope.type is EnvelopeType.DLQ:
        kind = "dlq"
    else:
        return None
    source = envelope.payload.get("source")
    where = None
    if isinstance(source, Mapping):
        p, o = source.get("partition"), source.get("offset")
        if isinstance(p, int) and isinstance(o, int):
            where = (p, o)
    cause = str(envelope.causation_id) if envelope.causation_id is not None else None
    error = envelope.error.type if envelope.error is not None else None
    return Outcome(kind, (partition, offset), cause, where, error)


@attrs.frozen
class DeliveryReport:
    """What happened to every sent record."""

    sent: int
    answered: int
    """Records with at least one result event or dead letter."""
    lost: tuple[SentRecord, ...]
    duplicated: int
    """Result events beyond the first, summed over records."""
    reordered: int
    """Records whose first answer came after the first answer of a later record of its key."""
    dead_lettered: int
    """Records with a dead letter."""
    errors: Counter[str] = attrs.field(factory=Counter)
    """Dead letters by error type."""

    @property
    def passed(self) -> bool:
        """Nothing lost."""
        return not self.lost


def check(sent: Sequence[SentRecord], outcomes: Iterable[Outcome]) -> DeliveryReport:
    """Account for every sent record against the outcomes read back."""
    by_id = {r.envelope_id: r for r in sent if r.envelope_id is not None}
    by_source = {(r.partition, r.offset): r for r in sent}
    evts: Counter[SentRecord] = Counter()
    dlqs: set[SentRecord] = set()
    errors: Counter[str] = Counter()
    first_answers: dict[str, list[tuple[tuple[int, int], int]]] = defaultdict(list)
    for outcome in outcomes:
        record = by_id.get(outcome.cause or "") or (
            by_source.get(outcome.source) if outcome.source is not None else None
        )
        if record is None:
            continue
        if outcome.kind == "dlq":
            dlqs.add(record)
            errors[outcome.error or "unknown"] += 1
            continue
        evts[record] += 1
        if evts[record] == 1 and record.key is not None and record.seq is not None:
            first_answers[record.key].append((outcome.position, record.seq))
    lost = tuple(r for r in sent if evts[r] == 0 and r not in dlqs)
    return DeliveryReport(
        sent=len(sent),
        answered=len(sent) - len(lost),
        lost=lost,
        duplicated=sum(n - 1 for n in evts.values() if n > 1),
        reordered=sum(_out_of_order(answers) for answers in first_answers.values()),
        dead_lettered=len(dlqs),
        errors=errors,
    )


def _out_of_order(answers: list[tuple[tuple[int, int], int]]) -> int:
    highest = -1
    late = 0
    for _, seq in sorted(answers):
        if seq < highest:
            late += 1
        highest = max(highest, seq)
    return late


def render_reports(rows: Sequence[tuple[str, DeliveryReport, str]]) -> str:
    """Render a Markdown table: one row per scenario (name, report, a note on what was measured)."""
    lines = [
        "| scenario | sent | answered | lost | duplicated | reordered | dead letters | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, report, note in rows:
        lines.append(
            f"| {name} | {report.sent:,} | {report.answered:,} | {len(report.lost):,} | "
            f"{report.duplicated:,} | {report.reordered:,} | {report.dead_lettered:,} | {note} |"
        )
    return "\n".join(lines)
