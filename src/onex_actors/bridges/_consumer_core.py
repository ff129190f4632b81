"""``ConsumerCore``: one consumer-group member behind a worker thread, for either client.

The thread owns the client (neither is thread-safe): it fetches, commits, pauses,
resumes and seeks. It keeps going while partitions are paused, so a slow node never
makes the group rebalance. Each fetch becomes one batch on the trio side. What both
clients need is here once: the poll thread and its commands, declarative pause and
resume, holding back while trio is behind, the stall watch and the stuck-poll check,
the commit of done offsets before partitions are revoked, read-again epochs and the
group state a transaction is committed with. A ``ConsumerClient`` adapter holds only
what differs between the clients.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import trio

from onex_actors.core import BusError
from onex_actors.runtime import PartitionEvents, Record, TopicPartition, TransactionState

from ._consumer_client import ConsumerClient
from ._membership import GroupMember
from ._stalls import StallWatch

__all__ = ["STUCK_POLL_S", "ConsumerCore"]

logger = logging.getLogger("onex_actors.kafka")

MAX_OUTSTANDING_BATCHES = 4
"""Batches handed to trio and not yet taken before the thread holds back."""
STUCK_POLL_S = 120.0
"""A fetch (a 50 ms poll) still running after this long is hung inside the client."""
_WATCH_EVERY_S = 5.0
_FETCH_TIMEOUT_S = 0.05
_BUSY_FETCH_TIMEOUT_S = 0.002
"""A fetch's wait while records came lately: the runtime's calls (a transaction's group
state, a commit) run between fetches, so they wait at most this long for their turn."""
_BUSY_FOR_S = 0.5
"""How long after records came the consumer counts as busy."""
_MAX_CONSECUTIVE_FAILURES = 50
_T = TypeVar("_T")


class ConsumerCore(GroupMember):
    """The trio side of one consumer-group member and its thread; a ``BusConsumer``."""

    def __init__(
        self,
        client: ConsumerClient,
        group_id: str,
        *,
        max_poll_records: int = 500,
        stall_timeout_s: float = 60.0,
        call_timeout_s: float = 10.0,
        partitions: PartitionEvents | None = None,
    ) -> None:
        super().__init__(partitions)
        self.client = client
        self.group_id = group_id
        self.max_poll_records = max_poll_records
        self.stall_timeout_s = stall_timeout_s
        self.call_timeout_s = call_timeout_s
        """How long a call into the consumer thread (a commit), or joining it, may take."""
        self.rebalances = 0
        """Rebalances that took partitions away, as trio applied them."""
        self.revoke_commits = 0
        """Commits made for partitions about to be revoked."""
        self.revoked_by_client = 0
        """Revocations as the client's callbacks reported them (their thread)."""
        self.polling_since: float | None = None
        """``time.monotonic()`` when the consumer thread entered its current fetch."""
        self._stalls = StallWatch(group_id, stall_timeout_s)
        self._send, self._receive = trio.open_memory_channel[tuple[int, list[Record]] | BusError](
            math.inf
        )
        self._epoch = 0
        """The read-again a fetched batch belongs to (consumer thread: set by the seek)."""
        self._wanted_epoch = 0
        """The read-again :meth:`poll` accepts batches of (trio thread): bumped the moment
        :meth:`rewind` is called, so a batch fetched before its seek is dropped even if it
        arrives while the seek waits for the consumer thread."""
        self._assigned_generation = -1
        """The generation whose assignment the client last put in place."""
        self._commands: queue.Queue[Callable[[], object]] = queue.Queue()
        self._lock = threading.Lock()
        self._paused: set[TopicPartition] = set()
        """Partitions trio wants paused (under the lock)."""
        self._held: set[TopicPartition] = set()
        """Partitions the thread has paused in the client."""
        self._unsure: set[TopicPartition] = set()
        """Partitions (re)assigned since the last reconcile: paused or not, who knows
        (under the lock)."""
        self._outstanding = 0
        self._behind = False
        self._taken = threading.Event()
        """Set when trio takes a batch: a thread that waits while trio is behind wakes."""
        self._records_came = float("-inf")
        """When the last fetch that brought records returned (``time.monotonic``)."""
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Create the client in its thread and subscribe."""
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.Thread(
            target=self._run, name=f"onex-consumer-{self.group_id}", daemon=True
        )
        self._thread.start()
        await trio.to_thread.run_sync(self._ready.wait)
        if self._failure is not None:
            raise BusError(f"cannot start the Kafka consumer: {self._failure}") from None

    async def aclose(self) -> None:
        """Stop fetching and close the client (without committing anything more).

        A consumer thread that does not finish within ``call_timeout_s`` (wedged inside
        the client) is left behind as the daemon thread it is, so shutdown stays bounded.
        """
        self._stopping.set()
        thread = self._thread
        if thread is None:
            return
        await trio.to_thread.run_sync(thread.join, self.call_timeout_s, abandon_on_cancel=True)
        if thread.is_alive():
            logger.error(
                "Kafka consumer of group %s did not stop within %g s: leaving its thread "
                "behind (the process exits without it)",
                self.group_id,
                self.call_timeout_s,
            )

    # -- the BusConsumer port -----------------------------------------------------

    async def poll(self, max_records: int) -> list[Record]:
        """Return the next batch from the consumer thread (waits for one).

        Every record delivered is handed on, even one whose partition was revoked
        meanwhile: its new owner may handle it again (a duplicate), never lose it.
        Batches fetched before a :meth:`rewind` are dropped. Raises ``BusError`` if the
        thread has been stuck inside one fetch for ``STUCK_POLL_S``: the host fails
        loudly, not silently.
        """
        while True:
            with trio.move_on_after(_WATCH_EVERY_S):
                delivered = await self._receive.receive()
                if isinstance(delivered, BusError):
                    raise delivered
                epoch, batch = delivered
                with self._lock:
                    self._outstanding -= 1
                self._taken.set()
                if epoch == self._wanted_epoch:
                    return batch
                continue  # fetched before a rewind: read again from the last commit
            self._check_not_stuck()

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` of the partitions this member still owns.

        Raises ``BusError`` when the broker refuses (the group rebalanced while the
        broker was away, the coordinator moved).
        """
        owned = {tp: offset for tp, offset in offsets.items() if tp in self.assignment}
        if not owned:
            await trio.lowlevel.checkpoint()
            return
        await self._ask(lambda: self.client.commit(owned))

    async def transaction_state(self) -> TransactionState:
        """Return this member's group metadata, the revocations counted, its partitions.

        Read on the consumer thread: metadata of a newer generation always comes with
        its revocation counted (the client reports a revocation before it rejoins). The
        metadata is None unless the member is stable in a generation and, where the
        client says so, holds that generation's assignment (a client may mark a new
        generation stable just before it replaces the assignment, and brokers accept a
        transaction's offsets of generation -1 unchecked).
        """

        def read() -> TransactionState:
            assigned_before = self._assigned_generation
            group = self.client.group_position()
            owned = frozenset(self.client.assignment())
            settled = group.stable and group.generation >= 0 and bool(group.member_id)
            if self.client.checks_assigned_generation:
                settled = (
                    settled and assigned_before == group.generation == self._assigned_generation
                )
            metadata = group.metadata if settled else None
            return TransactionState(metadata, self.revoked_by_client, owned)

        return await self._ask(read)

    async def rewind(self) -> None:
        """Read every owned partition again from its last committed offset.

        Batches fetched before and not yet returned by :meth:`poll` are dropped.
        """
        self._wanted_epoch += 1  # before any await: nothing fetched earlier is dispatched
        epoch = self._wanted_epoch
        await self._ask(lambda: self._rewind(epoch))

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop fetching ``partitions``; the thread goes on.

        Pausing is declarative: the thread reconciles the client's paused partitions
        with this set before every fetch, so it survives rebalances.
        """
        with self._lock:
            self._paused.update(partitions)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        """Fetch ``partitions`` again."""
        with self._lock:
            self._paused.difference_update(partitions)

    # -- what the client's rebalance callbacks report (their thread) -----------------

    def assigned(self, partitions: list[TopicPartition], generation: int) -> None:
        """Note ``generation``'s assignment; hand it to trio."""
        self._assigned_generation = generation
        with self._lock:
            self._unsure.update(partitions)
        self._soon(self._change_assignment, partitions, ())

    def before_revoke(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Return the offsets of ``partitions`` to commit before they go (asks trio)."""
        if partitions:
            self.revoked_by_client += 1
        events = self.events
        if events is None or not partitions or self._token is None:
            return {}
        try:
            done = trio.from_thread.run_sync(events.revoking, partitions, trio_token=self._token)
        except trio.RunFinishedError:
            return {}
        return dict(done)

    def revoke_committed(self, count: int, failure: str | None) -> None:
        """Count a commit before a revocation; say so when it failed."""
        if failure is None:
            self.revoke_commits += 1
            return
        logger.warning(
            "Kafka consumer of group %s could not commit %d revoked partitions before "
            "they went (their next owner may handle some records again): %s",
            self.group_id,
            count,
            failure,
        )

    def revoked(self, partitions: list[TopicPartition], *, lost: bool) -> None:
        """Hand the revocation to trio (a lost assignment counts as one, and is said)."""
        if lost and partitions:
            self.revoked_by_client += 1
            logger.warning(
                "Kafka consumer of group %s lost its %d partitions: its session ended (cut "
                "off from the brokers, or too slow), so other members own them now and "
                "nothing of theirs is committed here; it rejoins the group",
                self.group_id,
                len(partitions),
            )
        self._soon(self._apply_revocation, partitions)

    # -- trio side helpers ----------------------------------------------------------

    def _apply_revocation(self, partitions: list[TopicPartition]) -> None:
        if partitions:
            self.rebalances += 1
        self._change_assignment((), partitions)

    def _check_not_stuck(self) -> None:
        since = self.polling_since
        if since is None or time.monotonic() - since <= STUCK_POLL_S:
            return
        stack = self._consumer_stack()
        logger.error(
            "Kafka consumer of group %s is stuck inside %s; its thread is at:\n%s\nthe "
            "client's threads are at:\n%s",
            self.group_id,
            self.client.poll_name,
            "".join(stack),
            _thread_stacks(self.client.io_thread_prefix),
        )
        where = stack[-1].strip().replace("\n", " ") if stack else "unknown"
        raise BusError(
            f"Kafka consumer of group {self.group_id!r} has been inside one "
            f"{self.client.poll_name} for {time.monotonic() - since:.0f} s, its thread at "
            f"{where} (whole stack in the log): the client is hung. Stopping rather than "
            "stalling silently; restart the host (its supervisor should)."
        )

    def _consumer_stack(self) -> list[str]:
        """Return the consumer thread's stack now, innermost frame last (evidence of a hang)."""
        thread = self._thread
        frame = None if thread is None else sys._current_frames().get(thread.ident or -1)
        return [] if frame is None else traceback.format_stack(frame)

    async def _ask(self, command: Callable[[], _T]) -> _T:
        """Run ``command`` on the consumer thread; return what it returns."""
        done = trio.Event()
        failure: list[BusError] = []
        answer: list[_T] = []

        def run() -> None:
            try:
                answer.append(command())
            except self.client.client_errors as exc:
                failure.append(BusError(f"Kafka consumer call failed: {_describe(exc)}"))
            self._soon(done.set)

        self._commands.put(run)
        with trio.move_on_after(self.call_timeout_s):
            await done.wait()
        if not done.is_set():
            raise BusError(
                f"Kafka consumer of group {self.group_id!r} did not answer within "
                f"{self.call_timeout_s:g} s: its thread is busy or wedged inside the client"
            )
        if failure:
            raise failure[0]
        return answer[0]

    def _soon(self, fn: Callable[..., object], *args: object) -> None:
        if self._token is None:
            return
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(fn, *args)

    def _deliver(self, delivered: tuple[int, list[Record]] | BusError) -> None:
        self._send.send_nowait(delivered)

    # -- the consumer thread -------------------------------------------------------

    def _run(self) -> None:
        opening_errors: tuple[type[BaseException], ...] = (
            ValueError,
            TypeError,
            *self.client.client_errors,
        )
        try:
            self.client.open(self)
        except opening_errors as exc:
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    self._fetch_once()
                    failures = 0
                except self.client.client_errors as exc:
                    # e.g. pausing a partition a concurrent rebalance just took away
                    failures += 1
                    if _fatal(exc) or failures >= _MAX_CONSECUTIVE_FAILURES:
                        raise
                    logger.warning("Kafka consumer of group %s: %s", self.group_id, exc)
            self._run_commands()
        except BaseException as exc:
            logger.error("Kafka consumer of group %s stopped: %s", self.group_id, exc)
            stopped = (
                exc
                if isinstance(exc, BusError)  # the core's own verdict (a stall), as it is
                else BusError(f"Kafka consumer of group {self.group_id!r} stopped: {exc}")
            )
            self._soon(self._deliver, stopped)
        finally:
            self.client.close()

    def _fetch_once(self) -> None:
        self._run_commands()
        self.client.refresh_subscription()
        with self._lock:
            outstanding = self._outstanding
            paused = set(self._paused)
        if outstanding >= MAX_OUTSTANDING_BATCHES:
            self._behind = True
        elif outstanding < MAX_OUTSTANDING_BATCHES // 2:
            self._behind = False
        holding = self._behind and self.client.holds_by_pausing
        self._reconcile_pauses(paused, hold_all=holding)
        if self._behind and not holding:
            # trio has not taken the last batches: wait here rather than pause every
            # partition (a pause drops what the client fetched ahead)
            self._taken.wait(_FETCH_TIMEOUT_S)
            self._taken.clear()
            self._stalls.check(self.client, self.client.assignment())  # held: no verdict
            return
        now = self.polling_since = time.monotonic()
        busy = now - self._records_came < _BUSY_FOR_S or not self._commands.empty()
        try:
            fetched = self.client.fetch(
                _BUSY_FETCH_TIMEOUT_S if busy else _FETCH_TIMEOUT_S, self.max_poll_records
            )
        finally:
            self.polling_since = None
        self._ends.update(fetched.ends)
        if fetched.records:
            self._records_came = time.monotonic()
            with self._lock:
                self._outstanding += 1
            self._soon(self._deliver, (self._epoch, fetched.records))
        # only after the batch is handed over: nothing fetched may be dropped on the way
        self._stalls.check(self.client, self._held)

    def _reconcile_pauses(self, paused: set[TopicPartition], *, hold_all: bool) -> None:
        """Pause and resume so the client's paused set is the one wanted (thread only)."""
        with self._lock:
            if not (paused or hold_all or self._held or self._unsure):
                return
            unsure_now = set(self._unsure)
        assigned = self.client.assignment()
        want = {tp for tp in assigned if hold_all or tp in paused}
        unsure = unsure_now & assigned
        held = (self._held & assigned) - unsure
        if want - held:
            self.client.pause(want - held)
        if (held | unsure) - want:
            self.client.resume((held | unsure) - want)
        self._held = want
        with self._lock:
            self._unsure -= assigned

    def _rewind(self, epoch: int) -> None:
        sought = self.client.seek_to_committed()
        self._epoch = epoch  # only once sought: until then nothing fetched is handed on
        logger.info(
            "Kafka consumer of group %s (pid %d) reads again from %s",
            self.group_id,
            os.getpid(),
            ", ".join(sorted(sought)) or "no partition",
        )

    def pause_unknown(self, partitions: list[TopicPartition]) -> None:
        """Note that ``partitions`` may have lost their pause flag (assigned anew)."""
        with self._lock:
            self._unsure.update(partitions)

    def _run_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            command()


def _describe(exc: BaseException) -> str:
    """Describe a client error in one line (librdkafka's carry a ``KafkaError``)."""
    if exc.args and not isinstance(exc.args[0], str) and hasattr(exc.args[0], "str"):
        return str(exc.args[0])
    return f"{type(exc).__name__}: {exc}"


def _fatal(exc: BaseException) -> bool:
    """Whether a client error says the client cannot go on (librdkafka's fatal errors)."""
    error = exc.args[0] if exc.args else None
    fatal = getattr(error, "fatal", None)
    return bool(fatal()) if callable(fatal) else False


def _thread_stacks(prefix: str | None) -> str:
    """Where the client's own Python threads are now: a fetch may wait on one."""
    if prefix is None:
        return "(none of its threads run Python)"
    frames = sys._current_frames()
    return "\n".join(
        f"{thread.name}:\n" + "".join(traceback.format_stack(frames[thread.ident]))
        for thread in threading.enumerate()
        if thread.name.startswith(prefix) and thread.ident in frames
    )
