"""``NodeWork``: what a node actor does with its envelopes, whatever its lifecycle.

``concurrency`` workers take what waits in the inbox as far as the node's ``ordering``
lets out (everything, up to ``BATCH_LIMIT``, for a handler with ``execute_batch``; one
envelope otherwise), answer each envelope once (a result,
or an error event and a dead letter), and remember the answers for the idempotency
window. ``NodeActor`` adds the lifecycle: runs, kills, restarts and health.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Final

import trio
from msgspec import structs
from pydantic import JsonValue, ValidationError

from onex_actors.core import (
    REPLY_TO_HEADER,
    BusError,
    EffectContract,
    EnvelopeError,
    EnvelopeStatus,
    ErrorInfo,
    HandlerError,
    HostedNode,
    IdempotencyCache,
    MissingValue,
    NodeKind,
    PayloadSchema,
    dead_letter_of,
    decode_envelope,
    error_result_of,
    forwarded_command,
    payload_problem,
    pure_result_of,
    result_of,
    sending_instance,
    stored_key,
)

from ._coalesce import superseded
from ._health import Durations
from ._inbox import Inbox
from ._item import WorkItem
from ._outbox import Outbox, RecordLost, RuntimeLog
from ._ports import AckCallback, Handler, OutboundRecord, PureOutcome
from ._tracing import HandlerSpan, Tracer

__all__ = ["BATCH_LIMIT", "NodeWork"]

logger = logging.getLogger("onex_actors.runtime")

BATCH_LIMIT = 512
"""Most envelopes a worker of a batch handler takes from the inbox per wake-up."""
SLOW_DECISION_S = 1.0
"""A pure node's slice decided slower than this is said (at most once a minute a node):
nothing else of the host ran meanwhile."""
_SLOW_SAID_EVERY_S = 60.0
_MUST_BE_QUICK: Final = {
    NodeKind.COMPUTE: "its compute.function or compute.output",
    NodeKind.REDUCER: "its CEL (key, guards, assignments)",
}
"""What of a pure node's contract runs in its decision (else: an orchestrator's CEL)."""
_UNTRACED: AbstractContextManager[None] = nullcontext()
"""The handler span of a call when tracing is off: none (one object, reused)."""


class NodeWork:
    """A node's inbox, handler and answers: the state that survives restarts."""

    def __init__(
        self,
        hosted: HostedNode,
        handler: Handler,
        outbox: Outbox,
        log: RuntimeLog,
        tracer: Tracer | None = None,
    ) -> None:
        self.hosted = hosted
        self.tracer = tracer
        """Starts the spans of this node's envelopes (``None``: tracing is off)."""
        self.contract = hosted.contract
        self.handler = handler
        self.outbox = outbox
        self.log = log
        self._execute_batch = getattr(handler, "execute_batch", None)
        self._decide_batch = getattr(handler, "decide_batch", None)
        ordering = self.contract.ordering
        if self._decide_batch is not None and self.contract.concurrency == 1:
            # one worker deciding whole slices in read order, synchronously: nothing can
            # overlap, and holding back all but one record per key or partition would
            # only shrink its slices
            ordering = "none"
        self.inbox = Inbox(hosted.node_id, self.contract.inbox_size, ordering)
        self._then = self.contract.then if isinstance(self.contract, EffectContract) else None
        self._contract_id = self.contract.contract_id
        self.in_flight: dict[WorkItem, None] = {}
        """Envelopes taken and not finished, in the order they were taken (a set that
        keeps order: after a kill they go back in that order)."""
        self.redo: deque[WorkItem] = deque()
        """Envelopes handed back after a kill or crash, handled before the inbox."""
        self.handled_ok = 0
        self.handled_error = 0
        self.dead_letters = 0
        self.duplicates_skipped = 0
        self.dead_letter_reasons: Counter[str] = Counter()
        """Dead letters of this node by reason (``error_type``)."""
        self.handler_durations = Durations()
        """How long handler calls took (a batch call counts once)."""
        self._payload_schema = _compiled(self.contract.payload_schema)
        self._result_schema = _compiled(self.contract.result_schema)
        self.answered: IdempotencyCache[OutboundRecord] = IdempotencyCache(
            window_s=self.contract.idempotency_window_s,
            max_entries=self.contract.idempotency_max_entries,
            max_bytes=self.contract.idempotency_max_bytes,
        )
        """The record each recently answered envelope was answered with."""
        self._slow_said_at: float | None = None
        self.unknown_reply_to: set[str] = set()
        """``onex-reply-to`` values seen that name no orchestrator of the contract tree
        (each logged once): their results went to the evt topic only."""

    @property
    def node_id(self) -> str:
        """The node's id."""
        return self.hosted.node_id

    @property
    def _batches(self) -> bool:
        return self._execute_batch is not None or self._decide_batch is not None

    async def _worker(self) -> None:
        limit = BATCH_LIMIT if self._batches else 1
        while True:
            if self.redo:
                await self._redo(limit)
                continue
            try:
                items = await self.inbox.take(limit)
            except trio.EndOfChannel:
                return
            await self._work(items, batch=self._batches)
            del items  # not held while waiting for the next ones

    async def _redo(self, limit: int) -> None:
        """Handle envelopes handed back after a kill or crash.

        One whose handling crashed the node is replayed alone, with ``execute``, so the poison is
        found; ones held at a kill go on as a batch.
        """
        redo = self.redo
        if redo[0].crashes:
            await self._work([redo.popleft()], batch=False)
            return
        items = [redo.popleft()]
        while redo and len(items) < limit and not redo[0].crashes:
            items.append(redo.popleft())
        await self._work(items, batch=self._batches)

    async def _work(self, items: list[WorkItem], *, batch: bool) -> None:
        """Handle ``items`` (held in flight meanwhile), then finish them."""
        self.in_flight.update(dict.fromkeys(items))
        await self.inbox.report()
        if self.tracer is not None:
            self._trace(items, self.tracer)
        try:
            if self._decide_batch is not None:
                await self._handle_pure(items)
            elif batch:
                await self._handle_batch(items)
            else:
                for item in items:
                    if not item.answered:
                        await self._handle_once(item)
        except Exception:
            # a crash counts against the envelopes whose handling raised it, not against
            # what other workers had in flight (those are cancelled, as at a kill)
            for item in items:
                if not item.answered:
                    item.crashes += 1
            raise
        for item in items:
            item.finish()
            self.in_flight.pop(item, None)
            if item.span is not None:
                item.span.end()
                item.span = None
        self.inbox.release(items)

    def _trace(self, items: list[WorkItem], tracer: Tracer) -> None:
        """Start the span of each item not handled before (one held at a crash has one)."""
        for item in items:
            if item.span is None and not item.answered:
                item.envelope, item.span = tracer.consume(self.hosted, item.envelope, item.record)

    def _handling(self, items: list[WorkItem]) -> AbstractContextManager[HandlerSpan | None]:
        """Open the span of one handler call for ``items`` (nothing when tracing is off)."""
        if self.tracer is None:
            return _UNTRACED
        return self.tracer.handling(self.hosted, [i.span for i in items if i.span is not None])

    async def _handle_once(self, item: WorkItem) -> None:
        envelope = item.envelope
        previous = self.answered.get(envelope.envelope_id, trio.current_time())
        if previous is None:
            if not await self._refused(item):
                await self._handle(item)
            return
        # the answer again, with what went out with it (the copy for the orchestrator that
        # sent the command, the command its then: forwards): read again after an aborted
        # transaction, those were voided with the first answer
        self.duplicates_skipped += 1
        if item.span is not None:
            item.span.event("answered_from_idempotency_window", {})
        for record in (previous, *self._replies(item, previous), *self._then_again(item, previous)):
            await self.outbox.publish(record, item.ticket)
        item.answered = True

    async def _handle_batch(self, items: list[WorkItem]) -> None:
        """Handle ``items`` with one call of the handler's ``execute_batch``.

        Anything unusual leaves the batch for the one-envelope path, with the same
        semantics: a duplicate, a timeout of the whole batch, a failed envelope.
        """
        assert self._execute_batch is not None
        fresh = await self._fresh(items)
        if not fresh:
            return
        started = time.perf_counter()
        try:
            with self._handling(fresh), trio.fail_after(self.contract.timeout_s):
                outcomes = await self._execute_batch([item.envelope for item in fresh])
        except trio.TooSlowError:
            for item in fresh:
                await self._handle(item)
            return
        finally:
            self.handler_durations.observe(time.perf_counter() - started)
        if len(outcomes) != len(fresh):
            raise RuntimeError(
                f"execute_batch of node {self.node_id!r} returned {len(outcomes)} outcomes "
                f"for {len(fresh)} envelopes"
            )
        outputs = _Outputs()
        failed: list[tuple[WorkItem, HandlerError]] = []
        for item, outcome in zip(fresh, outcomes, strict=True):
            if isinstance(outcome, HandlerError):
                failed.append((item, outcome))
                continue
            try:
                outputs.add(item, self._answer_records(item, outcome))
            except HandlerError as exc:
                failed.append((item, exc.detached()))
        if await self._publish(outputs):
            self.answered.remember_many(
                [
                    (item.envelope.envelope_id, evt, len(evt.value or b""))
                    for item, evt in outputs.answers
                ],
                trio.current_time(),
            )
        for item, error in failed:
            await self._handle(item, first_failure=error)

    async def _fresh(self, items: list[WorkItem]) -> list[WorkItem]:
        """Answer what was answered before (and what breaks ``payload_schema``); the rest."""
        now = trio.current_time()
        fresh: list[WorkItem] = []
        for item in items:
            if item.answered:
                continue
            if self.answered.get(item.envelope.envelope_id, now) is None:
                if not await self._refused(item):
                    fresh.append(item)
            else:
                await self._handle_once(item)
        return fresh

    async def _handle_pure(self, items: list[WorkItem]) -> None:
        """Decide ``items`` with the pure handler's ``decide_batch``, then answer each.

        The decision is synchronous (nothing else runs between a key's read and its
        write); a failure is the envelope's error, never retried.
        """
        assert self._decide_batch is not None
        # no idempotency window: a decision is cheap and the same each time, and a
        # reducer's state knows what it holds (a window would answer a command read
        # again after an abort without its intents and changelog record)
        fresh = [i for i in items if not i.answered]
        if self._payload_schema is not None:
            fresh = [i for i in fresh if not await self._refused(i)]
        # records already void (their partition read again after an abort, or revoked)
        # are not decided: what a decision wrote would outlive the outputs voided with it
        fresh = [i for i in fresh if not _void(i)]
        if not fresh:
            return
        started = time.perf_counter()
        try:
            with self._handling(fresh):
                outcomes = self._decide_batch([(item.envelope, item.record) for item in fresh])
        finally:
            took = time.perf_counter() - started
            self.handler_durations.observe(took)
            if took > SLOW_DECISION_S:
                self._slow_decision(took, len(fresh))
        outputs = _Outputs()
        # at least once, state that cannot send its commands again is written after them
        last = (
            _Outputs()
            if not self.outbox.holds_outputs
            and any(isinstance(o, PureOutcome) and o.records_last for o in outcomes)
            else None
        )
        failed: list[tuple[WorkItem, HandlerError]] = []
        for item, outcome in zip(fresh, outcomes, strict=True):
            if isinstance(outcome, HandlerError):
                failed.append((item, outcome))
                continue
            try:
                records = () if last is not None else outcome.records
                if outcome.payload is None:  # answered elsewhere, later, or not here
                    outputs.add(item, [*self._commands(outcome), *records], answer=False)
                    self._count_ended(outcome, outputs)
                else:
                    produced = self._answer_records(item, outcome.payload, outcome, records)
                    outputs.add(item, produced)
            except (EnvelopeError, HandlerError) as exc:
                error_type = exc.error_type if isinstance(exc, HandlerError) else "send_failed"
                message = str(exc)
                if outcome.records:
                    # the decision is in the store, so its state is written all the same:
                    # the changelog holds what the store does; the error answers the item
                    (last if last is not None else outputs).add_unanswered(
                        item, list(outcome.records)
                    )
                    message += (
                        f"; node {self.node_id!r} took the command (its new state is kept), "
                        "only what it sends could not be sent"
                    )
                failed.append((item, HandlerError(message, error_type=error_type, retryable=False)))
                continue
            if last is not None and outcome.records:
                last.add(item, list(outcome.records), answer=False)
        if not self.outbox.holds_outputs:  # held outputs are coalesced as they are released
            self._coalesce(outputs)
            if last is not None:
                self._coalesce(last)
        # shielded: the slice is decided and its states are in the store, so an actor
        # killed now (its items then handled again, as duplicates of those states) still
        # writes them; the kill waits for the outbox, which settles every record
        with trio.CancelScope(shield=True):
            if last is None:
                await self._publish(outputs)
            else:
                await self._publish_before(outputs, last)
        for item, error in failed:
            await self._fail(
                item,
                ErrorInfo(type=error.error_type, message=str(error), retryable=False, attempts=1),
            )

    def _coalesce(self, outputs: _Outputs) -> None:
        """Leave out the state records of ``outputs`` a later one of their key supersedes."""
        for topic in outputs.coalesce():
            self.outbox.coalesced[topic] += 1

    async def _publish(self, outputs: _Outputs) -> bool:
        """Publish a slice's outputs as one list; mark their items answered.

        Return whether there was anything to publish.
        """
        if not outputs.records:
            for item in outputs.silent:
                item.answered = True
            return False
        await self.outbox.publish_many(
            outputs.records, outputs.acks, partial(self._unproduced_at, outputs)
        )
        for item, _ in outputs.answers:
            item.answered = True
        for item in outputs.silent:
            item.answered = True
        self.handled_ok += len(outputs.answers) + outputs.ended_ok
        self.handled_error += outputs.ended_error
        return True

    def _count_ended(self, pure: PureOutcome, outputs: _Outputs) -> None:
        """Count the answers ``pure`` sends to earlier commands (a workflow's, as it ends)."""
        for command, topic, _ in pure.commands:
            if topic == self.hosted.evt_topic:
                if command.status is EnvelopeStatus.OK:
                    outputs.ended_ok += 1
                else:
                    outputs.ended_error += 1

    async def _publish_before(self, outputs: _Outputs, last: _Outputs) -> None:
        """Publish ``outputs``, wait until every one is acknowledged, then ``last``'s records.

        The items' tickets expect both parts from the start, so no offset is committed
        before ``last`` is acknowledged too.
        """
        acknowledged = _Acknowledged(len(outputs.records))
        outputs.acks = [acknowledged.wrap(on_ack) for on_ack in outputs.acks]
        await self._publish(outputs)
        await acknowledged.wait()
        if acknowledged.failure is not None:
            # a command was lost and the host stops: a state written now would make the
            # command, read again after the restart, a duplicate that sends nothing
            for on_ack in last.acks:
                if on_ack is not None:
                    on_ack(acknowledged.failure)
            return
        if last.records:
            await self.outbox.publish_many(
                last.records, last.acks, partial(self._unproduced_at, last)
            )

    async def _refused(self, item: WorkItem) -> bool:
        """Answer ``item`` with ``invalid_payload`` if its payload breaks ``payload_schema``."""
        if self._payload_schema is None:
            return False
        problem = self._payload_schema.problem(item.envelope.payload)
        if problem is None:
            return False
        message = f"node {self.node_id!r}: the payload does not satisfy payload_schema {problem}"
        error = ErrorInfo(type="invalid_payload", message=message, retryable=False, attempts=0)
        await self._fail(item, error)
        return True

    def _remember(self, item: WorkItem, answer: OutboundRecord) -> None:
        size = len(answer.value or b"")
        self.answered.remember(item.envelope.envelope_id, answer, trio.current_time(), size=size)

    async def _handle(self, item: WorkItem, *, first_failure: HandlerError | None = None) -> None:
        retry = self.contract.retry
        attempt = 0
        while True:
            attempt += 1
            if attempt == 1 and first_failure is not None:
                error = first_failure  # the batch call was this envelope's first attempt
            else:
                try:
                    await self._answer(item)
                    self.handled_ok += 1
                    return
                except HandlerError as exc:
                    error = exc.detached()
            if not error.retryable or attempt >= retry.max_attempts:
                info = ErrorInfo(
                    type=error.error_type,
                    message=str(error),
                    retryable=error.retryable,
                    attempts=attempt,
                )
                await self._fail(item, info)
                return
            if item.span is not None:
                item.span.event("retry", {"attempt": attempt, "error.type": error.error_type})
            # a server's Retry-After is honoured up to the policy's longest backoff
            asked = min(error.retry_after_s or 0.0, retry.backoff_max_s)
            await trio.sleep(max(retry.delay(attempt), asked))

    async def _answer(self, item: WorkItem) -> None:
        timeout = self.contract.timeout_s
        started = time.perf_counter()
        try:
            with self._handling([item]) as span, trio.fail_after(timeout):
                payload = await self.handler.execute(item.envelope)
                if span is not None:
                    span.answered(payload)
        except trio.TooSlowError:
            raise HandlerError(
                f"handler of node {self.node_id!r} took longer than timeout_s={timeout:g}",
                error_type="timeout",
                retryable=True,
            ) from None
        finally:
            self.handler_durations.observe(time.perf_counter() - started)
        outputs = _Outputs()
        outputs.add(item, self._answer_records(item, payload))
        await self.outbox.publish_many(
            outputs.records, outputs.acks, partial(self._unproduced_at, outputs)
        )
        self._remember(item, outputs.records[0])
        item.answered = True

    def _answer_records(
        self,
        item: WorkItem,
        payload: Mapping[str, JsonValue],
        pure: PureOutcome | None = None,
        written: Sequence[OutboundRecord] = (),
    ) -> list[OutboundRecord]:
        """Encode the ``ok`` result of ``item``, the commands it sends, and ``written``.

        Those are the one its ``then`` forwards, and a pure node's (``pure.commands``);
        ``written``, its state records. ``HandlerError`` if any cannot be built.
        """
        if self._result_schema is not None:
            problem = self._result_schema.problem(payload)
            if problem is not None:
                raise HandlerError(
                    f"handler of node {self.node_id!r} answered a result that does not "
                    f"satisfy result_schema {problem}",
                    error_type="invalid_result",
                    retryable=False,
                )
        records = [
            self._result_record(item, payload, is_json=pure is not None and pure.payload_is_json)
        ]
        records += self._replies(item, records[0])
        if pure is not None:
            try:
                records += self._commands(pure)
            except EnvelopeError as exc:
                raise HandlerError(str(exc), error_type="intent_failed", retryable=False) from None
        records += written
        then = self._then
        if then is not None and self.hosted.then_topic is not None:
            try:
                command = forwarded_command(item.envelope, payload, then)
            except MissingValue as exc:
                raise HandlerError(
                    f"node {self.node_id!r} answered, but its then.payload finds nothing "
                    f"for the command to {then.node_id!r}: {exc}",
                    error_type="then_failed",
                    retryable=False,
                ) from None
            try:
                records.append(self.outbox.encode(command, self.hosted.then_topic))
            except EnvelopeError as exc:
                raise HandlerError(str(exc), error_type="then_failed", retryable=False) from None
        return records

    def _replies(self, item: WorkItem, result: OutboundRecord) -> list[OutboundRecord]:
        """Copy ``result`` for the orchestrator that sent ``item`` (``onex-reply-to``).

        Keyed by the workflow instance (its flow's, or the one ``onex-instance`` names),
        so it lands in the partition of the orchestrator's topic that holds the instance,
        even when the command was sent on under another key (a reducer's).
        """
        reply_to = item.envelope.headers.get(REPLY_TO_HEADER)
        if reply_to is None:
            return []
        topic = self.hosted.reply_topics.get(reply_to)
        if topic is None:
            self._unknown_reply_to(reply_to, item)
            return []
        command = item.envelope  # a reducer may have sent it on with its own key
        key = stored_key(command.tenant_id, sending_instance(command)).encode()
        return [structs.replace(result, topic=topic, key=key)]

    def _slow_decision(self, took: float, commands: int) -> None:
        """Say that deciding a slice held the host's loop for ``took`` seconds."""
        now = time.monotonic()
        if self._slow_said_at is not None and now - self._slow_said_at < _SLOW_SAID_EVERY_S:
            return
        self._slow_said_at = now
        what = _MUST_BE_QUICK.get(self.contract.kind, "its workflow's CEL")
        logger.warning(
            "node %r took %.1f s to decide %d command(s), and the host did nothing else "
            "meanwhile (no other node, commit, timer or probe): a pure node's decision runs "
            "on the host's loop, so %s must be quick and do no I/O; move slow or blocking "
            "work (requests, sleeps, models) to an effect node. Said at most once a minute.",
            self.node_id,
            took,
            commands,
            what,
        )

    def _unknown_reply_to(self, reply_to: str, item: WorkItem) -> None:
        """Say once per name that a result cannot go to the orchestrator its command names."""
        if reply_to in self.unknown_reply_to:
            return
        self.unknown_reply_to.add(reply_to)
        logger.warning(
            "node %r: command %s (correlation id %s) names onex-reply-to %r, which is no "
            "orchestrator of this runtime's contract tree, so its result goes to %s only and "
            "that workflow's step will time out; give this runtime the orchestrator's "
            "contract (its contracts directory), or send the command without the header. "
            "Said once per name.",
            self.node_id,
            item.envelope.envelope_id,
            item.envelope.correlation_id,
            reply_to,
            self.hosted.evt_topic,
        )

    def _then_again(self, item: WorkItem, previous: OutboundRecord) -> list[OutboundRecord]:
        """Build again the command ``then`` forwarded with ``previous`` (an ``ok`` answer).

        Its id derives from the command's, so the next node folds the two sends once.
        """
        then = self._then
        if then is None or self.hosted.then_topic is None or previous.value is None:
            return []
        try:
            answer = decode_envelope(previous.value)
            if answer.status is not EnvelopeStatus.OK:
                return []
            command = forwarded_command(item.envelope, answer.payload, then)
            return [self.outbox.encode(command, self.hosted.then_topic)]
        except (EnvelopeError, MissingValue):
            return []  # the first answer could not forward it either

    def _commands(self, pure: PureOutcome) -> list[OutboundRecord]:
        """Encode a pure node's commands (``EnvelopeError`` if one cannot be)."""
        records = []
        for command, topic, partition in pure.commands:
            record = self.outbox.encode(command, topic)
            records.append(
                record if partition is None else structs.replace(record, partition=partition)
            )
        return records

    def _result_record(
        self, item: WorkItem, payload: Mapping[str, JsonValue], *, is_json: bool = False
    ) -> OutboundRecord:
        """Encode the ``ok`` result of ``item``; ``HandlerError`` if it cannot be one.

        ``is_json``: the core built ``payload`` from JSON values only (not validated again).
        """
        try:
            if self.hosted.pure:
                evt = pure_result_of(
                    item.envelope, payload, contract_id=self._contract_id, payload_is_json=is_json
                )
            else:
                evt = result_of(item.envelope, payload, contract_id=self._contract_id)
            return self.outbox.encode(evt, self.hosted.evt_topic)
        except ValidationError as exc:
            raise HandlerError(
                f"handler of node {self.node_id!r} returned a payload that is not a JSON object: "
                f"{payload_problem(exc)}",
                error_type="invalid_result",
                retryable=False,
            ) from None
        except EnvelopeError as exc:
            raise HandlerError(str(exc), error_type="result_too_large", retryable=False) from None

    async def _unproduced_at(self, outputs: _Outputs, index: int, error: BaseException) -> None:
        """Answer the items of ``outputs.records[index]``, which could not be produced.

        A stateful node's record other than an answer (a state record, an intent, a step
        command, a workflow's answer) is not replaced: the decision that made it is
        already in the node's state, so an error answer would report as failed a command
        the state holds, and the record would never be sent. ``RecordLost`` stops the
        host instead; after the restart the state is restored from the changelog and the
        command, read again from the last commit, is decided again.
        """
        record = outputs.records[index]
        if self.hosted.keeps_state and not any(answer is record for _, answer in outputs.answers):
            where = (
                f"partition {record.partition}"
                if record.partition is not None
                else "the partition of its key"
            )
            raise RecordLost(
                f"node {self.node_id!r}: a record for {record.topic} ({where}) could not be "
                f"produced: {error}. It is part of a decision already in the node's state, "
                "so the host stops rather than answer with an error: after a restart the "
                "state is restored from the changelog and the commands past the last "
                "commit are decided again"
            )
        for item in outputs.owners[index]:
            await self._unproduced(item, error)

    async def _unproduced(self, item: WorkItem, error: BaseException) -> None:
        """Answer ``item`` with an error event and a dead letter: its result was refused."""
        if item.refused:  # its other output was refused too: answered once already
            return
        item.refused = True
        reason = error.reason if isinstance(error, BusError) else "produce_failed"
        self.handled_ok -= 1
        item.answered = False
        await self._fail(
            item,
            ErrorInfo(
                type=reason,
                message=f"the result of node {self.node_id!r} could not be produced: {error}",
                retryable=False,
            ),
        )

    async def _fail(self, item: WorkItem, error: ErrorInfo) -> None:
        """Emit the error event and the dead letter of ``item``, then settle its ticket."""
        if not item.answered:
            contract_id = self._contract_id
            evt = error_result_of(item.envelope, error, contract_id=contract_id)
            dlq = dead_letter_of(
                item.envelope,
                error,
                contract_id=contract_id,
                source=item.source,
                max_envelope_bytes=self.outbox.envelope_limit(self.hosted.dlq_topic),
            )
            record = await self.outbox.emit(evt, self.hosted.evt_topic, item.ticket)
            for reply in self._replies(item, record):
                await self.outbox.emit(evt, reply.topic, item.ticket)
            await self.outbox.emit(dlq, self.hosted.dlq_topic, item.ticket)
            self._remember(item, record)
            item.answered = True
            self.handled_error += 1
            self.dead_letters += 1
            self.dead_letter_reasons[error.type] += 1
            if item.span is not None:
                item.span.failed(error.type, error.message)
            await self.log.event(
                "dead_letter",
                {
                    "node_id": self.node_id,
                    "envelope_id": str(item.envelope.envelope_id),
                    "correlation_id": str(item.envelope.correlation_id),
                    "error_type": error.type,
                    "message": error.message,
                },
                level=logging.WARNING,
            )
        item.finish()
        if item.span is not None:
            item.span.end()
            item.span = None


class _Outputs:
    """The records a slice's items answer with, gathered to publish as one list."""

    __slots__ = ("acks", "answers", "ended_error", "ended_ok", "owners", "records", "silent")

    def __init__(self) -> None:
        self.records: list[OutboundRecord] = []
        self.acks: list[AckCallback | None] = []
        self.owners: list[tuple[WorkItem, ...]] = []
        """The items each record belongs to (whose answer a refused record replaces):
        one, or several for a state record kept in place of others (``coalesce``)."""
        self.answers: list[tuple[WorkItem, OutboundRecord]] = []
        """Each answered item and its result record."""
        self.silent: list[WorkItem] = []
        """Items handled with no result here (sent on, or their partition gone)."""
        self.ended_ok = 0
        self.ended_error = 0
        """Answers to earlier commands the slice's items end (a workflow's, by status)."""

    def add(self, item: WorkItem, produced: list[OutboundRecord], *, answer: bool = True) -> None:
        """Add ``item``'s records; its first is its answer unless ``answer`` is false."""
        self.add_unanswered(item, produced)
        if answer:
            self.answers.append((item, produced[0]))
        else:
            self.silent.append(item)

    def add_unanswered(self, item: WorkItem, produced: list[OutboundRecord]) -> None:
        """Add ``item``'s records, though it is answered otherwise (with an error)."""
        self.records += produced
        self.acks += item.ticket.expect_many(len(produced))
        self.owners += [(item,)] * len(produced)

    def coalesce(self) -> list[str]:
        """Drop the state records a later one of the same key makes redundant.

        The record kept takes over each dropped one's acknowledgement and owner. Return
        the topic of each record dropped. Only for outputs sent at once: an output held
        for a transaction must keep its ticket's own callback.
        """
        dropped = superseded(self.records)
        if not dropped:
            return []
        for index in sorted(dropped):
            kept = dropped[index]
            self.acks[kept] = _both(self.acks[kept], self.acks[index])
            self.owners[kept] += self.owners[index]
        kept_indexes = [i for i in range(len(self.records)) if i not in dropped]
        topics = [self.records[i].topic for i in sorted(dropped)]
        self.records = [self.records[i] for i in kept_indexes]
        self.acks = [self.acks[i] for i in kept_indexes]
        self.owners = [self.owners[i] for i in kept_indexes]
        return topics


def _both(first: AckCallback | None, second: AckCallback | None) -> AckCallback | None:
    """Return one acknowledgement callback that calls ``first`` and then ``second``."""
    if first is None:
        return second
    if second is None:
        return first

    def acknowledged(error: BaseException | None) -> None:
        first(error)
        second(error)

    return acknowledged


class _Acknowledged:
    """Counts the acknowledgements of a list of records; ``wait`` returns once all came."""

    __slots__ = ("_all", "_left", "failure")

    def __init__(self, count: int) -> None:
        self._left = count
        self._all = trio.Event()
        self.failure: BaseException | None = None
        """The first error a record was settled with (lost, not replaced)."""
        if count == 0:
            self._all.set()

    def wrap(self, on_ack: AckCallback | None) -> AckCallback:
        """Return ``on_ack`` (if any) counted here."""

        def acknowledged(error: BaseException | None) -> None:
            if on_ack is not None:
                on_ack(error)
            if error is not None and self.failure is None:
                self.failure = error
            self._left -= 1
            if self._left == 0:
                self._all.set()

        return acknowledged

    async def wait(self) -> None:
        """Wait until every record has been acknowledged (or has definitely failed)."""
        await self._all.wait()


def _void(item: WorkItem) -> bool:
    """Whether every offset ``item``'s ticket settles was retired (read again elsewhere)."""
    marks = item.ticket.marks
    return bool(marks) and all(offsets.retired for offsets, _ in marks)


def _compiled(schema: Mapping[str, JsonValue] | None) -> PayloadSchema | None:
    return None if schema is None else PayloadSchema(schema)
