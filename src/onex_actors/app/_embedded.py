"""A whole runtime host inside the caller's trio program: send commands, await results.

``open_embedded_host`` opens a host (by default on the in-process bus and the project's
``contracts/``) with an ``EnvelopeCollector`` following its result, dead-letter and log
topics. ``onex call`` runs one command through it; ``onex_actors.testing.open_test_host``
adds what only tests need (killing a node, raw records).
"""

from __future__ import annotations

import difflib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from pydantic import JsonValue

from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import (
    GLOBAL_TENANT,
    ConfigError,
    ConsumeMode,
    EnvelopeType,
    OnexEnvelope,
    OnexError,
    TopicPattern,
    cmd_topic,
    decode_envelope,
    dlq_topic,
    keyed_for_instance,
    new_command,
)
from onex_actors.registry import ContractRegistry, FileRegistry, StaticRegistry
from onex_actors.runtime import (
    Bus,
    Handler,
    OrchestratorHandler,
    ReducerHandler,
    RuntimeHealth,
    Tracer,
)

from ._bootstrap import open_runtime_host
from ._config import HostConfig
from ._host import RuntimeHost
from ._paths import from_project_root

__all__ = ["DEFAULT_TIMEOUT_S", "EmbeddedHost", "EnvelopeCollector", "open_embedded_host"]

DEFAULT_TIMEOUT_S = 60.0
"""How long the waits of ``EnvelopeCollector`` last before raising ``TimeoutError``."""

FOLLOWED = (
    "onex.app.local.global.evt.node.#",
    "onex.app.local.global.dlq.node.#",
    "onex.sys.local.global.log.runtime.#",
)


class EnvelopeCollector:
    """Reads every evt, dlq and log envelope from a bus in its own consumer group."""

    def __init__(self, bus: Bus, patterns: tuple[str, ...] = FOLLOWED) -> None:
        self.bus = bus
        self.patterns = tuple(TopicPattern(p) for p in patterns)
        self.by_correlation: defaultdict[uuid.UUID, list[OnexEnvelope]] = defaultdict(list)
        self.by_topic: defaultdict[str, list[OnexEnvelope]] = defaultdict(list)
        self._changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Collect until cancelled."""
        group = f"onex-collector-{uuid.uuid4().hex[:12]}"
        async with self.bus.consumer(self.patterns, group) as consumer:
            task_status.started()
            while True:
                for record in await consumer.poll(1000):
                    envelope = decode_envelope(record.value)
                    self.by_topic[record.topic].append(envelope)
                    if envelope.type is not EnvelopeType.LOG:
                        self.by_correlation[envelope.correlation_id].append(envelope)
                self._changed.set()
                self._changed = trio.Event()

    async def wait_until(
        self, predicate: Callable[[], object], *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        """Wait until ``predicate()`` is true, re-checking as envelopes arrive.

        Raises ``TimeoutError`` after ``timeout_s`` (trio's clock), so a test never hangs.
        """
        with trio.move_on_after(timeout_s):
            while not predicate():
                await self._changed.wait()
            return
        raise TimeoutError(f"condition still false after {timeout_s:g} s of waiting for envelopes")

    async def results(
        self,
        correlation_id: uuid.UUID,
        *,
        count: int = 1,
        kind: EnvelopeType = EnvelopeType.EVT,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> list[OnexEnvelope]:
        """Wait for ``count`` envelopes of ``kind`` in the flow ``correlation_id``."""

        def found() -> list[OnexEnvelope]:
            return [e for e in self.by_correlation[correlation_id] if e.type is kind]

        try:
            await self.wait_until(lambda: len(found()) >= count, timeout_s=timeout_s)
        except TimeoutError:
            raise TimeoutError(
                f"{len(found())} of {count} {kind.value} envelope(s) for correlation id "
                f"{correlation_id} after {timeout_s:g} s"
            ) from None
        return found()


class EmbeddedHost:
    """A running host and the envelopes it produced: send commands, await results."""

    def __init__(self, host: RuntimeHost, bus: Bus, collector: EnvelopeCollector) -> None:
        self.host = host
        self.bus = bus
        self.collector = collector
        self.known_nodes: frozenset[str] | None = None
        """The ids of the host's contract tree, nodes and runtimes (``None``: not known,
        nothing refused): ``send`` refuses any other at once, as ``onex emit`` does,
        rather than leave the caller waiting for an answer no runtime can give."""

    async def send(
        self, node_id: str, payload: Mapping[str, JsonValue], **fields: object
    ) -> OnexEnvelope:
        """Publish a command to ``node_id``'s command topic; return it.

        A command to a reducer or orchestrator this host runs is keyed where its state
        lives (``partition_key``), unless ``headers`` key it already. ``ConfigError`` for
        an id the contract tree lacks (a misspelling), unless this runtime reads its
        topic and so dead-letters the command (``consume: matching``).
        """
        handler = self.host.handlers.get(node_id)
        known = self.known_nodes
        if handler is None and known is not None and node_id not in known:
            self._refuse_unknown(node_id, known)
        command = new_command(node_id, payload, **fields)  # type: ignore[arg-type]
        if isinstance(handler, ReducerHandler):
            command = handler.reducer.keyed(command)
        elif isinstance(handler, OrchestratorHandler):
            command = keyed_for_instance(command)
        await self.host.outbox.emit(command, cmd_topic(node_id))
        return command

    def _refuse_unknown(self, node_id: str, known: frozenset[str]) -> None:
        """Raise ``ConfigError`` unless this host would read (and dead-letter) the command.

        A runtime with ``consume: matching`` reads every command topic its patterns
        match, and answers a command for a node it does not know with a dead letter.
        """
        table = self.host.table
        topic = cmd_topic(node_id)
        if table.runtime.subscriptions.consume is ConsumeMode.MATCHING and any(
            pattern.matches(topic) for pattern in table.patterns
        ):
            return
        close = difflib.get_close_matches(node_id, sorted(known), n=1, cutoff=0.6)
        guess = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"no node {node_id!r} in the contract tree of runtime {table.runtime_id!r} (its "
            f"nodes and runtimes: {', '.join(sorted(known)) or 'none'}){guess}"
        )

    async def result(self, command: OnexEnvelope) -> OnexEnvelope:
        """Wait for ``command``'s result event (the one it caused, not a later node's).

        An orchestrator's steps answer in the same flow first; its own answer, the
        workflow's result, is the one caused by the start command.
        """
        collector = self.collector

        def answer() -> OnexEnvelope | None:
            for envelope in collector.by_correlation[command.correlation_id]:
                if (
                    envelope.type is EnvelopeType.EVT
                    and envelope.causation_id == command.envelope_id
                ):
                    return envelope
            return None

        try:
            await collector.wait_until(lambda: answer() is not None)
        except TimeoutError:
            raise TimeoutError(
                f"no result of command {command.envelope_id} to {command.node_id!r} "
                f"(correlation id {command.correlation_id}) after {DEFAULT_TIMEOUT_S:g} s"
            ) from None
        found = answer()
        assert found is not None
        return found

    async def request(
        self, node_id: str, payload: Mapping[str, JsonValue], **fields: object
    ) -> OnexEnvelope:
        """Send a command and wait for its result event."""
        return await self.result(await self.send(node_id, payload, **fields))

    def results_of(self, command: OnexEnvelope) -> list[OnexEnvelope]:
        """Return the result events received so far for ``command``'s flow."""
        return [
            e
            for e in self.collector.by_correlation[command.correlation_id]
            if e.type is EnvelopeType.EVT
        ]

    def dead_letters(self, node_id: str) -> list[OnexEnvelope]:
        """Return the dead letters received so far on ``node_id``'s dlq topic (or the runtime's)."""
        return list(self.collector.by_topic[dlq_topic(node_id)])

    def logs(self, event: str | None = None) -> list[OnexEnvelope]:
        """Return the runtime log envelopes received so far, optionally only those of ``event``."""
        logs = self.collector.by_topic[self.host.log.topic]
        return [e for e in logs if event is None or e.payload.get("event") == event]

    def health(self) -> RuntimeHealth:
        """Return the host's health report."""
        return self.host.health_check()

    def state(
        self, node_id: str, key: str, *, tenant: str = GLOBAL_TENANT
    ) -> dict[str, JsonValue] | None:
        """Return the state this host holds for a reducer's ``key`` (or a workflow instance).

        For an orchestrator, ``key`` is the instance's correlation id (``onex state``'s
        argument). ``None`` if this host holds none for it (never sent, expired, or in a
        partition another member serves). ``ConfigError`` for a node this host does not
        run, or one that keeps no state.
        """
        handler = self.host.handlers.get(node_id)
        if isinstance(handler, ReducerHandler | OrchestratorHandler):
            return handler.state_of(key, tenant)
        if handler is None:
            hosted = ", ".join(sorted(self.host.handlers)) or "none"
            raise ConfigError(
                f"runtime {self.host.table.runtime_id!r} does not run node {node_id!r} (it "
                f"runs {hosted})"
            )
        kind = self.host.table.hosted[node_id].contract.kind.value
        article = "an" if kind[0] in "aeiou" else "a"
        raise ConfigError(
            f"node {node_id!r} is {article} {kind} node: it keeps no state (state() reads a "
            "reducer's keys and an orchestrator's instances)"
        )


@asynccontextmanager
async def open_embedded_host(
    runtime_id: str = "runtime-dev",
    *,
    contracts: Path | ContractRegistry | None = None,
    config: HostConfig | None = None,
    bus: Bus | None = None,
    handlers: Mapping[str, Handler] | None = None,
    host_class: type[EmbeddedHost] = EmbeddedHost,
    tracer: Tracer | None = None,
) -> AsyncIterator[EmbeddedHost]:
    """Open runtime host ``runtime_id`` inside the caller's task tree.

    Defaults to an in-process bus and the project's ``contracts/`` (found from the current
    directory upwards). ``handlers`` replaces the handlers of the named nodes;
    ``host_class`` is what the block gets (a subclass of ``EmbeddedHost``); ``tracer``
    replaces the one ``config.tracing`` would make. Leaving the block shuts the host down
    gracefully.
    """
    if contracts is None:
        contracts = from_project_root(Path("contracts"))
    registry = FileRegistry(contracts) if isinstance(contracts, Path) else contracts
    bus = bus if bus is not None else InProcessBus()
    started = False
    try:
        async with trio.open_nursery() as nursery:
            async with open_runtime_host(
                runtime_id,
                config or HostConfig(),
                registry=registry,
                bus=bus,
                handlers=handlers,
                tracer=tracer,
            ) as host:
                # The host has created its topics: the collector follows them by name (a
                # new group reads each from its start), which joins faster than by pattern.
                followed = tuple(t for t in host.topics() if ".cmd." not in t)
                collector = EnvelopeCollector(bus, followed)
                await nursery.start(collector.run)
                embedded = host_class(host, bus, collector)
                embedded.known_nodes = _addressable(registry)
                started = True
                yield embedded
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # a start that failed says why as itself (a ConfigError naming the contract),
        # not as a group of one; what the caller's block raised stays as trio gives it
        cause = _sole_error(group) if not started else None
        if cause is None:
            raise
        raise cause from None


def _addressable(registry: ContractRegistry) -> frozenset[str] | None:
    """Return the ids commands may go to: its nodes and runtimes (``None``: not known).

    A registry of another kind need not list its runtimes, so nothing is refused then.
    """
    if not isinstance(registry, FileRegistry | StaticRegistry):
        return None
    return frozenset(registry.node_contracts()) | registry.runtime_ids()


def _sole_error(group: BaseExceptionGroup) -> OnexError | None:
    """Return the one ``OnexError`` ``group`` holds, nested or not (``None``: not just one)."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        found = pending.pop()
        if isinstance(found, BaseExceptionGroup):
            pending.extend(found.exceptions)
        else:
            leaves.append(found)
    if len(leaves) == 1 and isinstance(leaves[0], OnexError):
        return leaves[0]
    return None
