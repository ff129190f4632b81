"""``ReducerHandler``: a reducer's decisions applied to its keyed store, a slice at a time.

A key's state is kept per tenant, under ``<tenant>/<key>`` (a tenant is a slug, so the two
never run together), in one partition of the node's input: the one Kafka's default
partitioner gives that name (``home_partition``). A command read from another partition
(its producer keyed it otherwise) is not folded where it landed: it is sent again,
unchanged but for its ``partition_key`` header, to that partition of the node's own
command topic (as Kafka Streams repartitions), and answered there, once. A result event
of a node named in ``input.events_of`` is sent on the same way, as a command made from it
(``core.event_command``); an error result is not folded. When several reducers of the
runtime fold one node's results, the first (``RoutingTable.event_folders``) reads them and
sends each on to every one of them (``co_readers``), each to its own command topic; a
reducer that cannot key one answers it there. Each change of state is written
to the node's changelog with the answer (one transaction under ``exactly_once``), keyed
by the state key, in the input's partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

from pydantic import JsonValue

from onex_actors.core import (
    GLOBAL_TENANT,
    PARTITION_KEY_HEADER,
    EnvelopeStatus,
    EnvelopeType,
    HandlerError,
    OnexEnvelope,
    ReduceContext,
    Reducer,
    ReducerContract,
    event_command,
    home_partition,
    stored_key,
)

from ._outbox import over_the_limit
from ._ports import HandlerHealth, OutboundRecord, PureOutcome, Record
from ._state import KeyedStore, due_at, oversized
from ._state_store import StateStore

__all__ = ["ReducerHandler"]

NOT_HERE = PureOutcome(None)
"""The outcome of a command whose partition went to another member: it answers it."""


class _SliceTally:
    """What deciding one slice counted: added to the handler's counters once it is decided."""

    __slots__ = ("read_by", "rekeyed", "skipped_by")

    def __init__(self) -> None:
        self.rekeyed = 0
        self.read_by: list[ReducerHandler] = []
        """The reducer (this one, or a co-reader) each result read was sent on to."""
        self.skipped_by: list[ReducerHandler] = []
        """The reducers that skip each error result read (this one and its co-readers)."""


class ReducerHandler:
    """Folds each command into its key's state and answers with the new state."""

    def __init__(
        self,
        contract: ReducerContract,
        *,
        cmd_topic: str,
        state_topic: str,
        intent_topics: Mapping[str, str],
        partitions: int = 1,
        states: StateStore | None = None,
    ) -> None:
        self.reducer = reducer = Reducer(contract)
        self.node_id = contract.node_id
        ttl_s = contract.state.ttl_s
        timed = ttl_s is not None or (contract.fsm is not None and bool(contract.fsm.timeouts))
        self.store = KeyedStore(states, due=partial(due_at, ttl_s=ttl_s) if timed else None)
        """The keys' states (committed ones in ``states``: memory unless given)."""
        self.timed = timed
        """Whether keys have timers: state timeouts or a TTL."""
        self.expires_at = reducer.expires_at
        self.cmd_topic = cmd_topic
        self.state_topic = state_topic
        self.intent_topics = intent_topics
        self.partitions = partitions
        """Partitions of the command topic (set when the host has checked the changelog)."""
        self.record_limit: int | None = None
        """The largest record the changelog takes (set with ``partitions``; none: no limit)."""
        self.rekeyed = 0
        """Commands sent on to the partition of their state key."""
        self.events_read = 0
        """Result events of other nodes (``input.events_of``) sent on as commands."""
        self.events_skipped = 0
        """Error results of those nodes: not folded."""
        self.co_readers: dict[str, list[ReducerHandler]] = {}
        """Per node whose results this reducer reads, the other reducers here that fold
        them too (set where the handlers are built): each result is sent on to them."""

    def decide_batch(
        self, inputs: Sequence[tuple[OnexEnvelope, Record | None]]
    ) -> list[PureOutcome | HandlerError]:
        """Fold each command in order; answer each (or send it on to its key's partition).

        If deciding fails part-way, no state written for the slice stays.
        """
        tally = _SliceTally()
        with self.store.a_slice():
            outcomes = self._decide_each(inputs, tally)
        # counted once the slice is decided: a slice that raised is decided again
        self.rekeyed += tally.rekeyed
        for reader in tally.read_by:
            reader.events_read += 1
        for reader in tally.skipped_by:
            reader.events_skipped += 1
        return outcomes

    def _decide_each(
        self, inputs: Sequence[tuple[OnexEnvelope, Record | None]], tally: _SliceTally
    ) -> list[PureOutcome | HandlerError]:
        reducer = self.reducer
        store = self.store
        outcomes: list[PureOutcome | HandlerError] = []
        for envelope, record in inputs:
            if envelope.type is EnvelopeType.EVT:
                outcomes.append(self._event(envelope, tally))
                continue
            partition = record.partition if record is not None else 0
            if record is not None and partition not in store.owned:
                outcomes.append(NOT_HERE)
                continue
            try:
                key = reducer.key_of(envelope)
            except HandlerError as exc:
                outcomes.append(exc.detached())
                continue
            stored = stored_key(envelope.tenant_id, key)
            key_bytes = stored.encode()
            home = home_partition(key_bytes, self.partitions)
            if home != partition:
                tally.rekeyed += 1
                headers = {**envelope.headers, PARTITION_KEY_HEADER: stored}
                copy = envelope.model_copy(update={"headers": headers})
                outcomes.append(PureOutcome(None, ((copy, self.cmd_topic, home),)))
                continue
            offset = record.offset if record is not None else None
            decision = reducer.decide(
                store.get(partition, stored), envelope, ReduceContext(partition, offset), key
            )
            if decision.error is not None:
                outcomes.append(decision.error)
                continue
            assert decision.answer is not None
            written: tuple[OutboundRecord, ...] = ()
            if decision.changed and offset is not None:
                state = decision.state
                value = state.to_bytes() if state is not None else None
                if value is not None and (size := oversized(value, key_bytes, self.record_limit)):
                    outcomes.append(self._too_large(key, size))
                    continue
                store.put(partition, stored, state, offset)
                written = (
                    OutboundRecord(
                        self.state_topic, value, key_bytes, (), partition, compacted=True
                    ),
                )
            commands = (
                tuple((cmd, self.intent_topics[cmd.node_id], None) for cmd in decision.intents)
                if decision.intents
                else ()
            )
            outcomes.append(
                PureOutcome(
                    decision.answer,
                    commands,
                    written,
                    payload_is_json=True,
                    records_last=bool(commands),
                )
            )
        return outcomes

    def _too_large(self, key: str, size: int) -> HandlerError:
        too_large = over_the_limit(size, self.state_topic, self.record_limit)
        return HandlerError(
            f"node {self.node_id!r}: key {key!r}'s new state would be {too_large}; state "
            "unchanged: lower state.max_bytes, or raise both limits",
            error_type="state_too_large",
            retryable=False,
        )

    def _event(self, event: OnexEnvelope, tally: _SliceTally) -> PureOutcome | HandlerError:
        """Send another node's ``ok`` result on to the key's partition, as a command.

        And to each co-reader's: one that cannot key it gets it unkeyed, and answers it
        with the error on its own topic (its refusal is its own, not this reducer's).
        """
        others = self.co_readers.get(event.node_id, ())
        if event.status is not EnvelopeStatus.OK:
            tally.skipped_by += (self, *others)
            return NOT_HERE  # an error result is not an input: nothing to fold or answer
        own = self.sent_on(event)
        if not others:
            if isinstance(own, HandlerError):
                return own
            tally.read_by.append(self)
            return PureOutcome(None, (own,))
        sent: list[tuple[OnexEnvelope, str, int | None]] = []
        for reader in (self, *others):
            forward = own if reader is self else reader.sent_on(event)
            if isinstance(forward, HandlerError):
                forward = (event_command(reader.node_id, event), reader.cmd_topic, None)
            else:
                tally.read_by.append(reader)
            sent.append(forward)
        return PureOutcome(None, tuple(sent))

    def sent_on(self, event: OnexEnvelope) -> tuple[OnexEnvelope, str, int | None] | HandlerError:
        """Return the command this reducer folds ``event`` as, with its topic and partition.

        ``HandlerError`` (``bad_key``) if the command has no state key.
        """
        command = event_command(self.node_id, event)
        try:
            key = self.reducer.key_of(command)
        except HandlerError as exc:
            return exc
        stored = stored_key(command.tenant_id, key)
        home = home_partition(stored.encode(), self.partitions)
        headers = {**command.headers, PARTITION_KEY_HEADER: stored}
        return command.model_copy(update={"headers": headers}), self.cmd_topic, home

    def restored(self, partition: int) -> None:
        """Accept any restored state (a reducer's state outlives its contract's versions)."""

    def state_of(self, key: str, tenant: str = GLOBAL_TENANT) -> dict[str, JsonValue] | None:
        """Return ``tenant``'s ``key``'s newest state (``None`` if it has none here)."""
        for _, state in self.store.find(stored_key(tenant, key)):
            return dict(state.value)
        return None

    def partition_of(self, key: str, tenant: str = GLOBAL_TENANT) -> int:
        """Return the partition ``tenant``'s ``key`` lives in."""
        return home_partition(stored_key(tenant, key).encode(), self.partitions)

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        """Not used: the runtime decides a reducer's commands with ``decide_batch``."""
        raise HandlerError(
            f"node {self.node_id!r} is a reducer: its commands are read from its topic",
            error_type="not_a_bus_command",
            retryable=False,
        )

    async def health_check(self) -> HandlerHealth:
        """Report healthy, with how many keys and partitions are held."""
        return HandlerHealth(True, f"{len(self.store)} keys in {len(self.store.owned)} partitions")

    async def aclose(self) -> None:
        """Close the state store (an on-disk one syncs and releases its folder)."""
        self.store.states.close()
