"""Closing the kafka-python producer is bounded when the broker went away with records queued.

A host drained on Ctrl-C, then waited without end in the producer's close: its last log
record was queued when the local broker was stopped. The producer runs in a child
process here, as in a host, so a close that never returns fails the test by its timeout.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from onex_actors.devinfra import LocalTansu

CHILD = """
import sys, trio
from onex_actors.bridges.kafka._producer import ProducerBridge
from onex_actors.runtime import OutboundRecord

TOPIC = "onex.app.local.global.cmd.node.close-node.v1"

async def main(bootstrap):
    bridge = ProducerBridge({"bootstrap_servers": bootstrap}, close_timeout_s=1.0)
    await bridge.start()
    acknowledged = trio.Event()
    await bridge.publish([OutboundRecord(TOPIC, b"first")], lambda _: acknowledged.set())
    await acknowledged.wait()
    print("acknowledged", flush=True)
    sys.stdin.readline()  # the test stops the broker, then says go on
    await bridge.publish([OutboundRecord(TOPIC, b"never delivered")], None)
    await bridge.aclose()
    print("closed", flush=True)

trio.run(main, sys.argv[1])
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_close_gives_up_undelivered_records_once_the_broker_is_gone(tmp_path: Path) -> None:
    broker = LocalTansu(home=tmp_path / "tansu", port=_free_port())
    broker.start()  # tansu: starts in milliseconds, and nothing else uses it
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, broker.bootstrap],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "acknowledged"
        finally:
            broker.stop()
        out, err = child.communicate("go on\n", timeout=60)  # it used to wait without end
    finally:
        child.kill()
        with child:  # its pipes closed, and waited for, however the test ends
            pass
    assert child.returncode == 0, err[-2000:]
    assert out.strip() == "closed"
