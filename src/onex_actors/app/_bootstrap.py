"""Wiring: contracts + config + bus + handlers → a running ``RuntimeHost``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import trio

from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import ConfigError, RoutingTable, build_routing_table
from onex_actors.registry import ContractRegistry, FileRegistry
from onex_actors.runtime import Bus, Handler

from ._config import HostConfig
from ._handlers import open_handlers
from ._host import RuntimeHost

__all__ = ["build_bus", "load_routing_table", "open_runtime_host"]


def load_routing_table(runtime_id: str, registry: ContractRegistry) -> RoutingTable:
    """Read runtime ``runtime_id`` and the node contracts, and check them together."""
    runtime = registry.runtime_contract(runtime_id)
    return build_routing_table(
        runtime, registry.node_contracts(), source=registry.source_of(runtime_id)
    )


def build_bus(config: HostConfig) -> Bus:
    """Build the bus the config names."""
    if config.bus.kind == "inprocess":
        return InProcessBus(partitions=config.bus.partitions)
    raise ConfigError(
        f"bus.kind {config.bus.kind!r} is not available in this build; use 'inprocess'"
    )


@asynccontextmanager
async def open_runtime_host(
    runtime_id: str,
    config: HostConfig,
    *,
    registry: ContractRegistry | None = None,
    bus: Bus | None = None,
    handlers: Mapping[str, Handler] | None = None,
) -> AsyncIterator[RuntimeHost]:
    """Run a runtime host for the duration of the block, inside the caller's task tree.

    ``handlers`` replaces the handler of the named nodes (for tests and embedding).
    Leaving the block shuts the host down gracefully: it stops consuming, drains what
    its nodes hold, commits and closes.
    """
    table = load_routing_table(runtime_id, registry or FileRegistry(config.contracts_dir))
    bus = bus if bus is not None else build_bus(config)
    async with open_handlers(table, config, overrides=handlers or {}) as built:
        host = RuntimeHost(table, bus, built, config)
        async with trio.open_nursery() as nursery:
            await nursery.start(host.run)
            try:
                yield host
            finally:
                host.shutdown()
