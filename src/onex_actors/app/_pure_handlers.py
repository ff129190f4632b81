"""Building the handlers of the pure kinds: compute functions imported, reducer stores made."""

from __future__ import annotations

import importlib

from onex_actors.core import (
    ComputeContract,
    ConfigError,
    HostedNode,
    ReducerContract,
    state_topic,
)
from onex_actors.handlers import ComputeHandler, PayloadFunction
from onex_actors.runtime import Handler, ReducerHandler

__all__ = ["import_function", "pure_handler"]


def pure_handler(node: HostedNode) -> Handler:
    """Return the handler of a hosted compute or reducer node."""
    contract = node.contract
    if isinstance(contract, ComputeContract):
        name = contract.compute.function
        function = import_function(node.node_id, name) if name is not None else None
        return ComputeHandler(contract, function)
    if isinstance(contract, ReducerContract):
        return ReducerHandler(
            contract,
            cmd_topic=node.cmd_topic,
            state_topic=state_topic(node.node_id),
            intent_topics=node.intent_topics,
        )
    raise ConfigError(f"node {node.node_id!r} is a {contract.kind.value}, not a pure kind")


def import_function(node_id: str, name: str) -> PayloadFunction:
    """Import ``package.module:function``; ``ConfigError`` saying what is missing."""
    module_name, _, attribute = name.partition(":")
    where = f"node {node_id!r}: key 'compute.function' ({name!r})"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{where}: module {module_name!r} cannot be imported ({exc}); install the package "
            "that provides it, or fix the name"
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(f"{where}: module {module_name!r} has no function {attribute!r}")
    return function  # type: ignore[no-any-return]
