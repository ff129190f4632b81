"""``ReducerHandler``: a reducer's decisions applied to its state store, a slice at a time.

The rule that keeps a key's state in one place: a reducer's commands are keyed by their
state key (``onex call``, ``onex emit`` and the embedding API set the ``partition_key``
header from the contract's ``key``). A command read with any other record key is not
folded where it landed: it is sent again, unchanged but for that header, to the node's
own command topic (as Kafka Streams repartitions), so the bus's partitioner puts it with
its key's state, and it is answered there, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import JsonValue

from onex_actors.core import (
    PARTITION_KEY_HEADER,
    HandlerError,
    OnexEnvelope,
    ReduceContext,
    Reducer,
    ReducerContract,
)

from ._ports import HandlerHealth, PureOutcome, Record
from ._state import StateStore

__all__ = ["ReducerHandler"]


class ReducerHandler:
    """Folds each command into its key's state and answers with the new state."""

    def __init__(
        self,
        contract: ReducerContract,
        store: StateStore,
        *,
        cmd_topic: str,
        intent_topics: Mapping[str, str],
    ) -> None:
        self.reducer = Reducer(contract)
        self.store = store
        self.cmd_topic = cmd_topic
        self.intent_topics = intent_topics
        self.rekeyed = 0
        """Commands sent on to the partition of their state key."""

    def decide_batch(
        self, inputs: Sequence[tuple[OnexEnvelope, Record | None]]
    ) -> list[PureOutcome | HandlerError]:
        """Fold each command in order; answer each (or send it on to its key's partition)."""
        reducer = self.reducer
        outcomes: list[PureOutcome | HandlerError] = []
        for envelope, record in inputs:
            try:
                key = reducer.key_of(envelope)
            except HandlerError as exc:
                outcomes.append(exc)
                continue
            if record is not None and record.key != key.encode():
                self.rekeyed += 1
                headers = {**envelope.headers, PARTITION_KEY_HEADER: key}
                copy = envelope.model_copy(update={"headers": headers})
                outcomes.append(PureOutcome(None, ((copy, self.cmd_topic),)))
                continue
            partition = record.partition if record is not None else 0
            ctx = ReduceContext(partition, record.offset if record is not None else None)
            decision = reducer.decide(self.store.get(partition, key), envelope, ctx, key)
            if decision.error is not None:
                outcomes.append(decision.error)
                continue
            if decision.changed:
                self.store.put(partition, key, decision.state)
            assert decision.answer is not None
            commands = tuple((cmd, self.intent_topics[cmd.node_id]) for cmd in decision.intents)
            outcomes.append(PureOutcome(decision.answer, commands))
        return outcomes

    def state_of(self, key: str) -> dict[str, JsonValue] | None:
        """Return ``key``'s state (``None`` if the key has none yet)."""
        for _, state in self.store.find(key):
            return dict(state.value)
        return None

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        """Decide one command not read from a bus (the runtime calls ``decide_batch``)."""
        outcome = self.decide_batch([(envelope, None)])[0]
        if isinstance(outcome, HandlerError):
            raise outcome
        assert outcome.payload is not None
        return outcome.payload

    async def health_check(self) -> HandlerHealth:
        """Report healthy: the state is in memory."""
        return HandlerHealth(True, f"{len(self.store)} keys")

    async def aclose(self) -> None:
        """Nothing to release."""
