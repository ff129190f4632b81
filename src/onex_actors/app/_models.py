"""Model endpoints and vector stores for the llm, embedding and vector nodes a host runs.

An endpoint with a ``base_url`` is used as configured; one without is a local server
this host starts on 127.0.0.1 (and stops when it ends). A vector store with a ``url``
is a Qdrant server; one without is qdrant-client's local mode on a folder.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import httpx2
import trio

from onex_actors.core import ConfigError, RoutingTable
from onex_actors.devinfra import LocalModelServer, chat_runner_installed, install_chat_runner
from onex_actors.handlers import ModelApi, ModelEndpoint, VectorStore

from ._config import HostConfig, ModelEndpointSettings, VectorStoreSettings
from ._kept_server import KeptServer
from ._redaction import register_secret

__all__ = ["needed_endpoints", "open_model_apis", "open_vector_stores"]

logger = logging.getLogger("onex_actors.host")

Family = Literal["llm", "embedding"]


def needed_endpoints(table: RoutingTable) -> dict[tuple[Family, str], list[str]]:
    """Map each (family, endpoint name) the hosted nodes use to those nodes."""
    needed: dict[tuple[Family, str], list[str]] = {}
    for node_id, contract in table.effects.items():
        if contract.llm is not None:
            needed.setdefault(("llm", contract.llm.endpoint), []).append(node_id)
        if contract.embedding is not None:
            needed.setdefault(("embedding", contract.embedding.endpoint), []).append(node_id)
    return needed


@asynccontextmanager
async def open_model_apis(
    table: RoutingTable, config: HostConfig
) -> AsyncIterator[dict[tuple[Family, str], ModelApi]]:
    """Open an API per endpoint the hosted nodes use, starting local servers as needed."""
    needed = needed_endpoints(table)
    if not needed:
        yield {}
        return
    async with AsyncExitStack() as stack:
        client = httpx2.AsyncClient(follow_redirects=False, trust_env=False)
        stack.push_async_callback(client.aclose)
        apis: dict[tuple[Family, str], ModelApi] = {}
        for (family, name), nodes in needed.items():
            settings = getattr(config, family).endpoints.get(name)
            if settings is None:
                known = ", ".join(sorted(getattr(config, family).endpoints)) or "none"
                raise ConfigError(
                    f"node {nodes[0]!r} uses {family}.endpoint {name!r}, which is not in the "
                    f"config's {family}.endpoints (configured: {known}); add "
                    f"{family}.endpoints.{name}.base_url, or leave it unset for a local server"
                )
            base_url = settings.base_url
            kept = None
            if base_url is None:
                kept = await _start_local(family, config, stack)
                base_url = kept.server.base_url
            endpoint = _endpoint(name, base_url, settings)
            apis[(family, name)] = ModelApi(endpoint, client, local_server=kept)
        yield apis


def _endpoint(name: str, base_url: str, settings: ModelEndpointSettings) -> ModelEndpoint:
    api_key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    register_secret(api_key)
    return ModelEndpoint(
        name=name,
        base_url=base_url,
        api_key=api_key,
        timeout_s=settings.timeout_s,
        max_concurrency=settings.max_concurrency,
    )


async def _start_local(family: Family, config: HostConfig, stack: AsyncExitStack) -> KeptServer:
    """Start a local server, kept running (started again if it exits) until ``stack`` ends."""
    log_dir = config.cache_dir / "onex" / "models"
    if family == "llm" and config.install_local_runners and not chat_runner_installed():
        await _install_chat_runner(log_dir)
    server = LocalModelServer(family, log_dir)
    server.start()  # on the trio thread: the server dies with the thread that started it
    stack.callback(server.stop)
    await trio.to_thread.run_sync(server.wait_ready, abandon_on_cancel=True)
    logger.info(
        "local %s server (%s) answers on %s (pid %s); it stops with this host",
        family,
        server.model,
        server.base_url,
        server.pid(),
    )
    kept = KeptServer(server)
    keeping = await stack.enter_async_context(trio.open_nursery())
    stack.callback(keeping.cancel_scope.cancel)  # unwound first: no restart while it stops
    keeping.start_soon(kept.keep)
    return kept


async def _install_chat_runner(log_dir: Path) -> None:
    """Build and install llama.cpp's server in a worker thread; a cancel kills the build."""
    stop, finished = threading.Event(), threading.Event()

    def install() -> None:
        try:
            install_chat_runner(lambda line: logger.info("%s", line), log_dir=log_dir, stop=stop)
        finally:
            finished.set()

    try:
        await trio.to_thread.run_sync(install, abandon_on_cancel=True)
    finally:
        stop.set()  # a Ctrl-C during the build: the thread kills pip within a second
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(finished.wait, 5.0)


@asynccontextmanager
async def open_vector_stores(
    table: RoutingTable, config: HostConfig, *, environ: Mapping[str, str] | None = None
) -> AsyncIterator[dict[str, VectorStore]]:
    """Open a Qdrant client per store the hosted vector nodes use; prepare collections."""
    needed: dict[str, list[str]] = {}
    for node_id, contract in table.effects.items():
        if contract.vector is not None:
            needed.setdefault(contract.vector.store, []).append(node_id)
    if not needed:
        yield {}
        return
    env = os.environ if environ is None else environ
    stores: dict[str, VectorStore] = {}
    try:
        for name, nodes in needed.items():
            settings = config.vector.stores.get(name)
            if settings is None:
                known = ", ".join(sorted(config.vector.stores)) or "none"
                raise ConfigError(
                    f"node {nodes[0]!r} uses vector.store {name!r}, which is not in the "
                    f"config's vector.stores (configured: {known}); add vector.stores.{name}"
                )
            stores[name] = await trio.to_thread.run_sync(_open_store, name, settings, env)
        for node_id, contract in table.effects.items():
            effect = contract.vector
            if effect is not None:
                await _prepare_collection(stores[effect.store], node_id, effect, config)
        yield stores
    finally:
        for store in stores.values():
            await trio.to_thread.run_sync(store.client.close)


def _open_store(name: str, settings: VectorStoreSettings, env: Mapping[str, str]) -> VectorStore:
    try:
        from qdrant_client import QdrantClient
    except ImportError:
        raise ConfigError(
            "a hosted node uses the vector family but qdrant-client is not installed: "
            "pip install 'onex-actors[vector]'"
        ) from None
    url = settings.url or (env.get("QDRANT_URL") if name == "default" else None) or None
    key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    if key is None and name == "default":
        key = env.get("QDRANT_API_KEY") or None
    register_secret(key)
    if url is not None:
        client = QdrantClient(url=url, api_key=key, timeout=int(settings.timeout_s))
        return VectorStore(name, client, url)
    settings.path.mkdir(parents=True, exist_ok=True)
    try:
        client = QdrantClient(path=str(settings.path))
    except RuntimeError as exc:  # the folder is locked by another process
        raise ConfigError(
            f"vector store {name!r}: local mode cannot open {settings.path}: {exc}. One "
            "process at a time may use a local store: give each host its own "
            f"vector.stores.{name}.path, or run a Qdrant server (vector.stores.{name}.url)"
        ) from None
    return VectorStore(name, client, f"local mode at {settings.path}")


async def _prepare_collection(
    store: VectorStore, node_id: str, effect: Any, config: HostConfig
) -> None:
    """Create the node's collection if missing (when allowed); check its vector size."""
    from qdrant_client import models

    settings = config.vector.stores[store.name]
    name = effect.collection
    where = f"node {node_id!r}: collection {name!r} in vector store {store.name!r} ({store.where})"
    try:
        exists = await store.call("collection_exists", name)
        if not exists:
            if not settings.create_collections:
                raise ConfigError(
                    f"{where} does not exist and vector.stores.{store.name}.create_collections "
                    "is false: create it, or allow the host to"
                )
            distance = getattr(models.Distance, effect.distance.upper())
            params = models.VectorParams(size=effect.size, distance=distance)
            await store.call("create_collection", name, vectors_config=params)
            logger.info("%s created (size %d, %s)", where, effect.size, effect.distance)
            return
        info = await store.call("get_collection", name)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot prepare it: {exc}") from None
    vectors = info.config.params.vectors
    size = getattr(vectors, "size", None)
    if size is not None and size != effect.size:
        raise ConfigError(
            f"{where} holds vectors of size {size}, but the contract's vector.size is "
            f"{effect.size}: fix the contract, or use another collection"
        )
