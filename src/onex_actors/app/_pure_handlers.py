"""Building the handlers of the pure kinds: compute functions imported, reducer stores made."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path

from onex_actors.bridges.lmdb import LmdbStates
from onex_actors.core import (
    ComputeContract,
    ConfigError,
    HostedNode,
    OrchestratorContract,
    ReducerContract,
    RoutingTable,
    state_topic,
)
from onex_actors.handlers import ComputeHandler, PayloadFunction
from onex_actors.runtime import Handler, OrchestratorHandler, ReducerHandler, StateStore

from ._config import HostConfig
from ._paths import from_project_root

__all__ = ["import_function", "link_co_readers", "pure_handler", "state_store"]


def pure_handler(
    node: HostedNode, states: StateStore | None = None, *, project: Path | None = None
) -> Handler:
    """Return the handler of a hosted compute or reducer node (``states``: a reducer's store).

    ``project``: the folder holding the contract tree, where a compute node's module may
    live (see :func:`import_function`).
    """
    contract = node.contract
    if isinstance(contract, ComputeContract):
        name = contract.compute.function
        function = import_function(node.node_id, name, project) if name is not None else None
        return ComputeHandler(contract, function)
    if isinstance(contract, ReducerContract):
        return ReducerHandler(
            contract,
            cmd_topic=node.cmd_topic,
            state_topic=state_topic(node.node_id),
            intent_topics=node.intent_topics,
            states=states,
        )
    if isinstance(contract, OrchestratorContract):
        return OrchestratorHandler(
            contract,
            cmd_topic=node.cmd_topic,
            evt_topic=node.evt_topic,
            state_topic=state_topic(node.node_id),
            states=states,
            reply_topics=node.reply_topics,
        )
    raise ConfigError(f"node {node.node_id!r} is a {contract.kind.value}, not a pure kind")


def link_co_readers(table: RoutingTable, handlers: Mapping[str, Handler]) -> None:
    """Tell the reducer that reads each node's results here which others fold them too."""
    for source, folders in table.event_folders.items():
        reader = handlers.get(folders[0])
        if isinstance(reader, ReducerHandler):
            reader.co_readers[source] = [
                other
                for node_id in folders[1:]
                if isinstance(other := handlers.get(node_id), ReducerHandler)
            ]


def state_store(config: HostConfig, group_id: str, node: HostedNode) -> StateStore | None:
    """Open a reducer's on-disk store when ``state.store`` is ``disk`` (else ``None``)."""
    settings = config.state
    if settings.store != "disk" or not isinstance(
        node.contract, ReducerContract | OrchestratorContract
    ):
        return None
    path = from_project_root(settings.path) / group_id / node.node_id
    return LmdbStates(path, map_size=settings.map_size_gib * 1024**3)


def import_function(node_id: str, name: str, project: Path | None = None) -> PayloadFunction:
    """Import ``package.module:function``; ``ConfigError`` saying what is missing.

    A module is looked for where Python looks, then in ``project`` (the folder holding
    the contract tree: a project's own package beside its ``contracts/``), which goes
    last on ``sys.path`` so that it never hides an installed package.
    """
    module_name, _, attribute = name.partition(":")
    where = f"node {node_id!r}: key 'compute.function' ({name!r})"
    if project is not None and str(project) not in sys.path:
        sys.path.append(str(project))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        beside = f", put it in {project}" if project is not None else ""
        raise ConfigError(
            f"{where}: module {module_name!r} cannot be imported ({exc}); install the package "
            f"that provides it{beside} or fix the name"
        ) from None
    except Exception as exc:  # the user's module failing as it is imported
        raise ConfigError(
            f"{where}: importing module {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(f"{where}: module {module_name!r} has no function {attribute!r}")
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        raise ConfigError(
            f"{where}: {attribute!r} is async; a compute node's function is a plain, pure "
            "function of the payload (I/O belongs in an effect node's handler)"
        )
    try:
        inspect.signature(function).bind({})
    except TypeError as exc:
        raise ConfigError(
            f"{where}: {attribute!r} cannot be called with the payload alone ({exc}); it "
            "takes one argument, the command's payload, and returns the result's"
        ) from None
    except ValueError:
        pass  # no signature to read (some built-ins): the call itself will tell
    return function  # type: ignore[no-any-return]
