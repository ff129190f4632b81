"""``ConsumerClient``: what one Kafka client's consumer must do for the consumer core.

An adapter holds only what differs between the clients (kafka-python, librdkafka): how
to create and subscribe, fetch, pause, commit, seek and read the group's metadata.
Every call runs on the core's consumer thread, which owns the client. The client
reports rebalances to the ``Rebalances`` it was opened with, from whichever thread its
callbacks run on; before partitions are revoked it commits what ``before_revoke``
returns, in the way its client allows inside that callback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

import attrs

from onex_actors.runtime import Record, TopicPartition

__all__ = ["ConsumerClient", "Fetched", "GroupPosition", "Progress", "Rebalances"]


@attrs.frozen
class Fetched:
    """One fetch: its records (unreadable ones as records to dead-letter) and log ends."""

    records: list[Record]
    ends: Mapping[TopicPartition, int] = attrs.field(factory=dict)
    """High watermarks the fetch responses carried, per partition."""


@attrs.frozen
class GroupPosition:
    """The member's group metadata as its client has it now."""

    metadata: object
    """What a transaction's offsets are sent with (KIP-447)."""
    generation: int
    member_id: str
    stable: bool = True
    """Whether the client counts the member stable in ``generation`` (where it says)."""


@attrs.frozen
class Progress:
    """Where the member reads a partition, and where its log ends."""

    position: int
    end: int


class Rebalances(Protocol):
    """What a client's rebalance callbacks report (the consumer core implements it)."""

    def assigned(self, partitions: list[TopicPartition], generation: int) -> None:
        """``partitions`` were assigned in ``generation`` (-1 when the client does not say)."""

    def before_revoke(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """``partitions`` are about to go: return the offsets to commit before they do."""

    def revoke_committed(self, count: int, failure: str | None) -> None:
        """Report the commit of :meth:`before_revoke`'s offsets (``failure``: why not)."""

    def revoked(self, partitions: list[TopicPartition], *, lost: bool) -> None:
        """``partitions`` went (``lost``: already another member's, nothing committed)."""

    def pause_unknown(self, partitions: list[TopicPartition]) -> None:
        """Whether ``partitions`` are paused is unknown now (the client assigned them anew)."""


class ConsumerClient(Protocol):
    """One Kafka client's consumer, driven by ``ConsumerCore`` on its consumer thread."""

    client_errors: tuple[type[BaseException], ...]
    """The exceptions a call into the client raises for a broker or network failure."""
    poll_name: str
    """How the client's fetch call is named in a stuck-poll error."""
    io_thread_prefix: str | None
    """The name prefix of the client's own Python threads (their stacks explain a hang)."""
    holds_by_pausing: bool
    """While trio is behind, pause every partition and keep fetching (True), or wait
    without fetching (False: the client keeps its membership on threads of its own)."""
    checks_assigned_generation: bool
    """Whether a transaction waits until the generation's assignment is in place."""

    def open(self, rebalances: Rebalances) -> None:
        """Create the client and subscribe, reporting rebalances to ``rebalances``."""

    def close(self) -> None:
        """Close the client without committing."""

    def refresh_subscription(self) -> None:
        """Follow topics that came to match the patterns, where the client does not."""

    def fetch(self, timeout_s: float, max_records: int) -> Fetched:
        """Fetch what is there within ``timeout_s`` (skipping past an unreadable record)."""

    def assignment(self) -> set[TopicPartition]:
        """Return the partitions the client holds now."""

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop fetching ``partitions``."""

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        """Fetch ``partitions`` again."""

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` synchronously."""

    def seek_to_committed(self) -> list[str]:
        """Move every owned partition to its last committed offset; describe each move."""

    def group_position(self) -> GroupPosition:
        """Return the member's group metadata now."""

    def progress(self, partitions: set[TopicPartition]) -> dict[TopicPartition, Progress] | None:
        """Position and log end of each of ``partitions`` it knows; None: unknown now."""
