"""Running ``omninode-runtime-host`` and ``onex`` as real processes in tests."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.kafka_support import SESSION_TIMEOUT_MS, TEST_CLIENT

from onex_actors.core import cmd_topic
from onex_actors.testing import host_env

REPO = Path(__file__).resolve().parents[2]
ONEX = [sys.executable, "-c", "from onex_actors.cli import main; main()"]


def kafka_env(bootstrap: str, **extra: str) -> dict[str, str]:
    settings = {
        "ONEX_KAFKA__SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
        "ONEX_KAFKA__CLIENT": TEST_CLIENT,
        **extra,
    }
    return host_env(bootstrap, **settings)


def onex(
    *args: str, env: Mapping[str, str], timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ONEX, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env=dict(env),
    )


def write_runtime(
    root: Path,
    runtime_id: str,
    node_ids: list[str],
    families: list[str],
    also: Sequence[str] = (),
) -> None:
    """A runtime contract hosting ``node_ids``, subscribed to their command topics and its own.

    Never ``cmd.node.#``: on a broker shared with other tests it would take (and
    dead-letter) their commands too. ``also`` adds the command topics of nodes it does
    not know and reads every topic its patterns match (``consume: matching``), to see
    them dead-lettered.
    """
    topics = ", ".join(f"'{cmd_topic(n)}'" for n in [*node_ids, runtime_id, *also])
    consume = "matching" if also else "hosted"
    (root / "runtime").mkdir(parents=True)
    (root / "runtime" / f"{runtime_id}.yaml").write_text(
        f"kind: runtime_host\nnode_id: {runtime_id}\nversion: '0.1.0'\n"
        f"subscriptions: {{cmd_topics: [{topics}], consume: {consume}}}\n"
        f"handlers: {{families: [{', '.join(families)}]}}\n"
        f"host_selector: {{node_ids: [{', '.join(node_ids)}]}}\n"
    )


def shipped_tree(
    root: Path,
    runtime_id: str,
    node_ids: list[str],
    families: list[str],
    also: Sequence[str] = (),
) -> Path:
    """A contract tree holding the shipped node contracts and one runtime hosting ``node_ids``."""
    write_runtime(root, runtime_id, node_ids, families, also)
    shutil.copytree(REPO / "contracts" / "nodes", root / "nodes")
    return root


def unique(name: str) -> str:
    """A node or runtime id no earlier run (or rerun) on this broker has used."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def write_contracts(root: Path, runtime: str, node_yaml: str, node: str) -> Path:
    """A contract tree of one node (``node_yaml``) and a runtime hosting it."""
    write_runtime(root, runtime, [node], ["local", "http"])
    (root / "nodes").mkdir()
    (root / "nodes" / f"{node}.yaml").write_text(node_yaml)
    return root


def echo_tree(root: Path, name: str) -> tuple[str, str, Path]:
    """A fresh echo node ``<name>-…`` and runtime ``runtime-<name>-…``, and their tree."""
    node, runtime = unique(name), unique(f"runtime-{name}")
    node_yaml = f"kind: effect\nnode_id: {node}\nversion: '0.1.0'\neffect_type: local\n"
    return node, runtime, write_contracts(root, runtime, node_yaml, node)


def free_port_pair() -> int:
    """A port below the ephemeral range whose next port (the controller's) is free too."""
    for port in range(29700, 29800, 2):
        with contextlib.ExitStack() as stack:
            try:
                for candidate in (port, port + 1):
                    probe = stack.enter_context(socket.socket())
                    probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair in 29700-29799")
