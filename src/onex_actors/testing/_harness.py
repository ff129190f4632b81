"""``open_test_host``: a whole runtime host inside the caller's nursery, for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from onex_actors.app import EmbeddedHost, HostConfig, open_embedded_host
from onex_actors.registry import ContractRegistry
from onex_actors.runtime import Bus, Handler, OutboundRecord, Tracer

__all__ = ["HostHarness", "open_test_host"]


class HostHarness(EmbeddedHost):
    """An embedded host with a test's powers: raw records, killing a node's actor."""

    __test__ = False

    async def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Publish raw bytes, as a misbehaving client would."""
        await self.bus.publish([OutboundRecord(topic=topic, value=value, key=key)])

    def kill(self, node_id: str) -> bool:
        """Kill ``node_id``'s actor; return whether it was running."""
        return self.host.runtime.kill(node_id)


@asynccontextmanager
async def open_test_host(
    runtime_id: str = "runtime-dev",
    *,
    contracts: Path | ContractRegistry | None = None,
    config: HostConfig | None = None,
    bus: Bus | None = None,
    handlers: Mapping[str, Handler] | None = None,
    tracer: Tracer | None = None,
) -> AsyncIterator[HostHarness]:
    """Open runtime host ``runtime_id`` inside the caller's task tree, for a test.

    ``open_embedded_host`` with a ``HostHarness``: see there for the defaults.
    """
    async with open_embedded_host(
        runtime_id,
        contracts=contracts,
        config=config,
        bus=bus,
        handlers=handlers,
        host_class=HostHarness,
        tracer=tracer,
    ) as host:
        assert isinstance(host, HostHarness)
        yield host
