"""Building each hosted node's handler from its contract and the host config."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import attrs

from onex_actors.core import ConfigError, EffectFamily, HostedNode, RoutingTable
from onex_actors.handlers import (
    DbHandler,
    EmbeddingHandler,
    HostAllowlist,
    HttpClients,
    HttpHandler,
    LlmHandler,
    LocalHandler,
    RecordedHandler,
    VectorHandler,
)
from onex_actors.runtime import Handler

from ._config import HostConfig
from ._databases import open_databases
from ._models import open_model_apis, open_vector_stores
from ._paths import from_project_root
from ._pure_handlers import link_co_readers, pure_handler, state_store

__all__ = ["open_handlers"]


def evolve_hosted(table: RoutingTable, hosted: Mapping[str, HostedNode]) -> RoutingTable:
    """Return ``table`` hosting only ``hosted``."""
    return attrs.evolve(table, hosted=hosted)


def consumer_group(config: HostConfig, table: RoutingTable) -> str:
    """Return the host's Kafka consumer group: configured, the contract's, or the runtime id."""
    return config.consumer_group or table.runtime.consumer_group or table.runtime_id


@asynccontextmanager
async def open_handlers(
    table: RoutingTable, config: HostConfig, *, overrides: Mapping[str, Handler]
) -> AsyncIterator[dict[str, Handler]]:
    """Build a handler per hosted node; shared clients live as long as the block.

    ``overrides`` supplies ready-made handlers for some nodes (tests, embedding).
    """
    handlers: dict[str, Handler] = {}
    unknown = sorted(set(overrides) - set(table.hosted))
    if unknown:
        raise ConfigError(f"handler given for node(s) not hosted here: {', '.join(unknown)}")
    needs_http = any(
        node.family is EffectFamily.HTTP and node_id not in overrides
        for node_id, node in table.hosted.items()
    )
    client = (
        HttpClients(max_connections=config.http.max_connections, timeout_s=config.http.timeout_s)
        if needs_http
        else None
    )
    allowlist = HostAllowlist.parse(config.http.allowlist)
    try:
        for node_id, node in table.hosted.items():
            if node_id not in overrides and node.pure:
                handlers[node_id] = pure_handler(
                    node,
                    state_store(config, consumer_group(config, table), node),
                    project=from_project_root(config.contracts_dir).resolve().parent,
                )
        link_co_readers(table, {**handlers, **overrides})
        for node_id, contract in table.effects.items():
            if node_id in overrides:
                continue
            if contract.local is not None:
                handlers[node_id] = LocalHandler(contract.local)
            elif contract.http is not None and client is not None:
                handlers[node_id] = HttpHandler(contract.http, client, allowlist)
        db_table = evolve_hosted(
            table, {n: h for n, h in table.hosted.items() if n not in overrides}
        )
        async with (
            open_databases(db_table, config) as pools,
            open_model_apis(db_table, config) as apis,
            open_vector_stores(db_table, config) as stores,
        ):
            for node_id, contract in db_table.effects.items():
                if contract.llm is not None:
                    api = apis[("llm", contract.llm.endpoint)]
                    handlers[node_id] = LlmHandler(contract.llm, api)
                elif contract.embedding is not None:
                    api = apis[("embedding", contract.embedding.endpoint)]
                    handlers[node_id] = EmbeddingHandler(contract.embedding, api)
                elif contract.vector is not None:
                    handlers[node_id] = VectorHandler(
                        contract.vector, stores[contract.vector.store]
                    )
            for node_id, contract in db_table.effects.items():
                answers = contract.answers_connection
                durable = contract.durable_idempotency
                if contract.db is not None:
                    handlers[node_id] = DbHandler(
                        contract.db,
                        pools[contract.db.connection],
                        node_id=node_id,
                        durable=durable,
                        store=pools[answers] if answers is not None else None,
                    )
                elif answers is not None and durable is not None and node_id in handlers:
                    handlers[node_id] = RecordedHandler(
                        handlers[node_id], pools[answers], node_id, durable
                    )
            yield {**handlers, **overrides}
    finally:
        for handler in handlers.values():
            await handler.aclose()
        if client is not None:
            await client.aclose()
