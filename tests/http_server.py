"""A real HTTP server on 127.0.0.1 for handler tests, recording every request it sees."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs


@attrs.define
class SeenRequest:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    at: float = attrs.field(factory=time.monotonic)


@attrs.define
class RecordingServer:
    port: int
    seen: list[SeenRequest]
    gate: threading.Event
    """Requests for /gate wait until this is set."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(SeenRequest(self.command, self.path, body, dict(self.headers)))
        path = self.path.strip("/")
        if path == "gate":
            self.server.gate.wait(timeout=120)
            self._reply(200, b"opened", "text/plain")
        elif path.startswith("status-"):
            self._reply(int(path.removeprefix("status-")), b"server says no", "text/plain")
        elif path == "big":
            self._reply(200, b"x" * 100_000, "text/plain")
        elif path == "big-unsized":
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"y" * 100_000)
            self.close_connection = True
        elif path.startswith("busy-once/"):  # an OpenAI-compatible server, busy at first
            if sum(seen.path == self.path for seen in self.server.seen) == 1:
                self.send_response(429)
                self.send_header("retry-after", "1")
                self.send_header("content-length", "0")
                self.end_headers()
            else:
                answer = {
                    "model": "stub-model",
                    "choices": [{"message": {"content": "done"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                }
                self._reply(200, json.dumps(answer).encode(), "application/json")
        elif path == "text":
            self._reply(200, b"plain words", "text/plain")
        elif path == "redirect":
            self.send_response(302)
            self.send_header("location", "/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()
        else:
            echo = {"method": self.command, "path": self.path, "body": body.decode() or None}
            self._reply(200, json.dumps(echo).encode(), "application/json")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away (a killed host) is not the server's error."""

    seen: list[SeenRequest]
    gate: threading.Event


@contextmanager
def recording_server(*, gated: bool = False) -> Iterator[RecordingServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.seen = []
    server.gate = threading.Event()
    if not gated:
        server.gate.set()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RecordingServer(server.server_address[1], server.seen, server.gate)
    finally:
        server.gate.set()
        server.shutdown()
        server.server_close()
        thread.join()
