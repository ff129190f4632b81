"""Produce COUNT ~200-byte commands for NODE to TOPIC (run as a separate process).

python bench/_produce.py BOOTSTRAP TOPIC NODE COUNT
"""

from __future__ import annotations

import sys

from kafka import KafkaProducer

from onex_actors.core import encode_envelope, new_command, record_headers, record_key


def main(bootstrap: str, topic: str, node: str, count: int) -> None:
    """Send ``count`` commands and wait until the broker has them all."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    for i in range(count):
        command = new_command(node, {"i": i, "pad": "x" * 40})
        producer.send(
            topic,
            value=encode_envelope(command),
            key=record_key(command),
            headers=record_headers(command),
        )
    producer.flush()
    producer.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
