"""``onex call``: one command through a runtime run in this process, no broker."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

import trio
from pydantic import ValidationError

from onex_actors.app import HostConfig, from_project_root, open_embedded_host
from onex_actors.core import ConfigError, EnvelopeStatus, OnexEnvelope, OnexError
from onex_actors.registry import FileRegistry

from ._client import parse_payload
from ._errors import as_onex_error, report, unwrap

__all__ = ["call"]


def call(
    node: str,
    payload: str = "{}",
    /,
    *,
    runtime: str | None = None,
    contracts_dir: Path | None = None,
    timeout: float = 30.0,
) -> int:
    """Send NODE one command through a runtime run in this process, print its result.

    The runtime (``--runtime``) runs on the in-process bus: for trying a node without a
    broker; ``onex emit`` talks to a running host instead.

    Parameters
    ----------
    node
        Target node id, e.g. ``echo-node``.
    payload
        The command's payload, a JSON object.
    runtime
        Runtime-host contract to run (it must host NODE). Default: ``runtime-dev`` where it
        hosts NODE, else the one runtime of the tree that does.
    contracts_dir
        Contract tree to read.
    timeout
        Seconds to wait for the result.
    """
    if contracts_dir is None:
        contracts_dir = from_project_root(Path("contracts"))
    try:
        body = parse_payload(payload)
        if not contracts_dir.is_dir():
            raise ConfigError(
                f"{contracts_dir}: no such contract tree (run inside a project, a folder "
                "holding contracts/ and config/, or pass --contracts-dir)"
            )
        registry = FileRegistry(contracts_dir)
        if runtime is None:
            runtime = _runtime_hosting(node, registry)
        result = trio.run(_call_once, runtime, registry, node, body, timeout)
    except BaseException as exc:
        error = unwrap(exc)
        if isinstance(error, OnexError):
            return report(error)
        if isinstance(error, ValidationError):  # a field of the command the caller gave
            return report(as_onex_error(error))
        raise
    print(json.dumps(result.model_dump(mode="json"), indent=2))
    if result.status is EnvelopeStatus.ERROR and result.error is not None:
        return report(
            ConfigError(f"{node} answered with {result.error.type}: {result.error.message}")
        )
    return 0


DEFAULT_RUNTIME = "runtime-dev"


def _runtime_hosting(node: str, registry: FileRegistry) -> str:
    """``runtime-dev`` if it hosts ``node``, else the one runtime that does (said on stderr)."""
    tree = registry.tree
    hosts = tree.hosts_by_node()
    runtimes = hosts.get(node, [])
    if DEFAULT_RUNTIME in runtimes:
        return DEFAULT_RUNTIME
    if len(runtimes) == 1:
        print(f"note: running {runtimes[0]}, the runtime that hosts {node!r}", file=sys.stderr)
        return runtimes[0]
    if runtimes:
        raise ConfigError(
            f"{node!r} is hosted by {', '.join(runtimes)} in {registry.root}: pass --runtime "
            "with the one to run"
        )
    close = difflib.get_close_matches(node, sorted(hosts), n=1, cutoff=0.6)
    guess = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"no runtime in {registry.root} hosts {node!r}.{guess} Hosted nodes: "
        f"{', '.join(sorted(hosts)) or 'none'}"
    )


async def _call_once(
    runtime: str, registry: FileRegistry, node: str, body: dict[str, Any], wait_s: float
) -> OnexEnvelope:
    async with open_embedded_host(runtime, contracts=registry, config=HostConfig()) as host:
        hosted = sorted(host.host.table.hosted)
        if node not in hosted:
            raise ConfigError(
                f"runtime {runtime!r} does not host {node!r} (it hosts {', '.join(hosted)}); "
                "pass --runtime with one that does"
            )
        with trio.move_on_after(wait_s):
            return await host.request(node, body)
        raise ConfigError(f"no result from {node!r} within {wait_s:g} s")
