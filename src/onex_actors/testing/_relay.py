"""A TCP relay run inside a network namespace: ``python _relay.py LISTEN UPSTREAM``.

Listens on ``LISTEN`` (``host:port``), forwards every connection to ``UPSTREAM``, and
prints ``listening`` once it accepts connections. Standalone (no package imports): it
runs under ``ip netns exec`` with whatever interpreter runs the harness.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading


def pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until either closes; then close both."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for end in (source, sink):
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> None:
    """Relay ``argv[1]`` to ``argv[2]`` until killed."""
    listen, upstream = _address(sys.argv[1]), _address(sys.argv[2])
    server = socket.create_server(listen)
    sys.stdout.write("listening\n")
    sys.stdout.flush()
    while True:
        client, _ = server.accept()
        try:
            far = socket.create_connection(upstream, timeout=10)
        except OSError:
            client.close()
            continue
        far.settimeout(None)
        for source, sink in ((client, far), (far, client)):
            threading.Thread(target=pump, args=(source, sink), daemon=True).start()


if __name__ == "__main__":
    main()
