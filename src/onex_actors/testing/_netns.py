"""A network partition for fault scenarios: a host in a network namespace of its own.

The namespace reaches the broker, which listens on the root namespace's 127.0.0.1 only,
through a veth pair and two TCP relays: one inside the namespace on its own
``127.0.0.1:<port>`` (so the broker's advertised address works there unchanged), one
in the root namespace on the veth's address, forwarding to the broker. Cutting the
link (``ip link set ... down``) drops every packet between them without a reset: the
host keeps running, cut off, as a host behind a failed switch would. Namespaces and
links are created and removed here, never left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from ._relay import pump

__all__ = ["NetworkCut", "namespaces", "netns_unavailable"]

_RELAY = Path(__file__).with_name("_relay.py")


def netns_unavailable() -> str | None:
    """Say why this machine cannot create network namespaces, or None when it can."""
    if sys.platform != "linux":
        return "network namespaces are Linux's"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    name = f"onex-probe-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    return None


class NetworkCut:
    """A network namespace whose link to the broker at ``127.0.0.1:port`` can be cut."""

    def __init__(self, port: int) -> None:
        tag = uuid.uuid4().hex[:6]
        index = int(tag, 16)  # a /30 of its own, so a namespace closing late never collides
        self.port = port
        self.name = f"onex-cut-{tag}"
        self.outer = f"onx{tag}a"
        self.inner = f"onx{tag}b"
        third, fourth = (index >> 6) % 256, (index % 64) * 4
        self.outer_address = f"10.231.{third}.{fourth + 1}"
        self.inner_address = f"10.231.{third}.{fourth + 2}"
        self._relay: subprocess.Popen[bytes] | None = None
        self._listener: socket.socket | None = None
        self._closing = threading.Event()
        self._open: list[socket.socket] = []
        """The outer relay's connections, closed with it."""
        self.cut_count = 0

    def __enter__(self) -> NetworkCut:
        try:
            _ip("netns", "add", self.name)
            _ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
            _ip("link", "set", self.inner, "netns", self.name)
            _ip("addr", "add", f"{self.outer_address}/30", "dev", self.outer)
            _ip("link", "set", self.outer, "up")
            self._in_ns("ip", "addr", "add", f"{self.inner_address}/30", "dev", self.inner)
            self._in_ns("ip", "link", "set", self.inner, "up")
            self._in_ns("ip", "link", "set", "lo", "up")
            self._start_outer_relay()
            self._relay = subprocess.Popen(
                self.command(
                    sys.executable,
                    str(_RELAY),
                    f"127.0.0.1:{self.port}",
                    f"{self.outer_address}:{self.port}",
                ),
                stdout=subprocess.PIPE,
            )
            assert self._relay.stdout is not None
            if self._relay.stdout.readline().strip() != b"listening":
                raise RuntimeError(f"the relay in namespace {self.name} did not start")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def command(self, *args: str) -> list[str]:
        """Return ``args`` as a command run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *args]

    def cut(self) -> None:
        """Drop every packet between the namespace and the broker (no reset)."""
        _ip("link", "set", self.outer, "down")
        self.cut_count += 1

    def restore(self) -> None:
        """Let packets through again."""
        _ip("link", "set", self.outer, "up")

    def close(self) -> None:
        """Stop the relays, delete the link and the namespace."""
        self._closing.set()
        if self._relay is not None:
            self._relay.kill()
            self._relay.wait()
            if self._relay.stdout is not None:
                self._relay.stdout.close()
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        for connection in self._open:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        subprocess.run(["ip", "link", "del", self.outer], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)

    def _in_ns(self, *args: str) -> None:
        subprocess.run(self.command(*args), check=True, capture_output=True)

    def _start_outer_relay(self) -> None:
        listener = socket.create_server((self.outer_address, self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._closing.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(source, sink), daemon=True).start()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def namespaces() -> list[str]:
    """Return the network namespaces that exist now (``ip netns list``)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
