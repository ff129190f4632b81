"""An HTTP endpoint that answers every request after a fixed delay, for bench/http_node.py.

    python bench/_slow_endpoint.py PORT DELAY_S

HTTP/1.1 with keep-alive on 127.0.0.1, in its own process: each request is answered,
``DELAY_S`` after it arrived, with its own JSON body (so the runtime's result carries
what the command sent). Requests on one connection are answered in turn; connections
run side by side. It prints ``ready`` once it listens.
"""

from __future__ import annotations

import sys

import trio

RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
    b"connection: keep-alive\r\n\r\n"
)


async def serve(stream: trio.SocketStream, delay_s: float) -> None:
    """Answer the requests of one connection until the client closes it."""
    buffer = b""
    try:
        while True:
            while b"\r\n\r\n" not in buffer:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buffer) < length:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buffer += data
            body, buffer = buffer[:length], buffer[length:]
            await trio.sleep(delay_s)
            await stream.send_all(RESPONSE % len(body) + body)
    except trio.BrokenResourceError:
        return


async def main(port: int, delay_s: float) -> None:
    """Listen on 127.0.0.1:``port`` until killed."""
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    print("ready", flush=True)
    await trio.serve_listeners(lambda stream: serve(stream, delay_s), listeners)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), float(sys.argv[2]))
