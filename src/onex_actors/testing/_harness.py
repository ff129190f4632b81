"""``open_test_host``: a whole runtime host inside the caller's nursery, for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from pydantic import JsonValue

from onex_actors.app import HostConfig, RuntimeHost, from_project_root, open_runtime_host
from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import (
    EnvelopeType,
    OnexEnvelope,
    cmd_topic,
    dlq_topic,
    new_command,
)
from onex_actors.registry import ContractRegistry, FileRegistry
from onex_actors.runtime import Bus, Handler, OutboundRecord, RuntimeHealth

from ._collector import EnvelopeCollector

__all__ = ["HostHarness", "open_test_host"]


class HostHarness:
    """Drives a running host: send commands, await results, kill nodes, read health."""

    __test__ = False

    def __init__(self, host: RuntimeHost, bus: Bus, collector: EnvelopeCollector) -> None:
        self.host = host
        self.bus = bus
        self.collector = collector

    async def send(
        self, node_id: str, payload: Mapping[str, JsonValue], **fields: object
    ) -> OnexEnvelope:
        """Publish a command to ``node_id``'s command topic; return it."""
        command = new_command(node_id, payload, **fields)  # type: ignore[arg-type]
        await self.host.outbox.emit(command, cmd_topic(node_id))
        return command

    async def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Publish raw bytes, as a misbehaving client would."""
        await self.bus.publish([OutboundRecord(topic=topic, value=value, key=key)])

    async def result(self, command: OnexEnvelope) -> OnexEnvelope:
        """Wait for the first result event of ``command``'s flow."""
        return (await self.collector.results(command.correlation_id))[0]

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

    def kill(self, node_id: str) -> bool:
        """Kill ``node_id``'s actor; return whether it was running."""
        return self.host.runtime.kill(node_id)

    def health(self) -> RuntimeHealth:
        """Return the host's health report."""
        return self.host.health_check()


@asynccontextmanager
async def open_test_host(
    runtime_id: str = "runtime-dev",
    *,
    contracts: Path | ContractRegistry | None = None,
    config: HostConfig | None = None,
    bus: Bus | None = None,
    handlers: Mapping[str, Handler] | None = None,
) -> AsyncIterator[HostHarness]:
    """Open runtime host ``runtime_id`` inside the caller's task tree.

    Defaults to an in-process bus and the project's ``contracts/`` (found from the current
    directory upwards). ``handlers`` replaces the handlers of the named nodes.
    Leaving the block shuts the host down gracefully.
    """
    if contracts is None:
        contracts = from_project_root(Path("contracts"))
    registry = FileRegistry(contracts) if isinstance(contracts, Path) else contracts
    bus = bus if bus is not None else InProcessBus()
    async with trio.open_nursery() as nursery:
        async with open_runtime_host(
            runtime_id, config or HostConfig(), registry=registry, bus=bus, handlers=handlers
        ) as host:
            # The host has created its topics: the collector follows them by name (a
            # new group reads each from its start), which joins faster than by pattern.
            followed = tuple(t for t in host.topics() if ".cmd." not in t)
            collector = EnvelopeCollector(bus, followed)
            await nursery.start(collector.run)
            yield HostHarness(host, bus, collector)
        nursery.cancel_scope.cancel()
