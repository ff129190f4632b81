"""A host's memory after a burst of large commands: the idempotency window's byte bound.

The case an outside producer reported: 1,200 echo commands of 900 KB took a host from
114 to 1,165 MiB RSS, held after the burst, because the window kept every answer whole.
Runs a host process over a real broker twice, in the same run: with the default window
(``idempotency_max_bytes`` 16 MiB) and with the byte bound lifted (the count bound of
10,000 alone, as before), and prints each host's RSS before, at its peak and after.

    python bench/idempotency_memory.py [--commands 1200] [--size 900000] [--json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from onex_actors.core import encode_envelope, new_command
from onex_actors.devinfra import LocalKafka
from onex_actors.testing import RawRecord
from onex_actors.testing._workload import send_records
from onex_actors.testing.faults import FaultLab

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_json_flag, print_json

PORT = 29492
UNBOUNDED = "idempotency_max_bytes: 1000000000000\n"


def rss_mib(pid: int) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of ``pid``, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def run(lab: FaultLab, name: str, extra: str, commands: int, size: int) -> dict[str, float]:
    setup = lab.echo(name, extra)
    reader = lab.reader(setup)
    with lab.host(setup) as host:
        time.sleep(2)  # let the host settle after joining its group
        before = rss_mib(host.pid)["VmRSS"]
        sent = []
        for start in range(0, commands, 50):
            records = [
                RawRecord(
                    encode_envelope(new_command(setup.node, {"i": i, "blob": "x" * size})),
                    codec="lz4",
                )
                for i in range(start, min(commands, start + 50))
            ]
            sent += send_records(lab.bootstrap, setup.node, records)
        answered = reader.read_until(lambda r: r.answered(sent) >= len(sent), 600)
        time.sleep(2)
        after = rss_mib(host.pid)
    reader.close()
    assert answered, f"{name}: not every command was answered"
    return {"before_mib": before, "peak_mib": after["VmHWM"], "after_mib": after["VmRSS"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1200)
    parser.add_argument("--size", type=int, default=900_000, help="payload bytes per command")
    add_json_flag(parser)
    args = parser.parse_args()
    broker = LocalKafka(port=PORT, controller_port=PORT + 1)
    broker.stop()
    broker.remove_data()
    bootstrap = broker.start()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            lab = FaultLab(bootstrap, Path(workdir))
            bounded = run(lab, "memory-bounded", "", args.commands, args.size)
            unbounded = run(lab, "memory-unbounded", UNBOUNDED, args.commands, args.size)
    finally:
        broker.stop()
        broker.remove_data()
    print(f"{args.commands} echo commands of {args.size:,}-byte payloads, one host process")
    print("| window | RSS before | peak | after the burst |")
    print("|---|---:|---:|---:|")
    for label, row in (("16 MiB (default)", bounded), ("count bound only", unbounded)):
        print(
            f"| {label} | {row['before_mib']:.0f} MiB | {row['peak_mib']:.0f} MiB "
            f"| {row['after_mib']:.0f} MiB |"
        )
    ratio = (bounded["after_mib"] - bounded["before_mib"]) / max(
        1.0, unbounded["after_mib"] - unbounded["before_mib"]
    )
    print(f"growth held after the burst, bounded / unbounded: {ratio:.2f}")
    if args.json:
        print_json(
            {
                "commands": args.commands,
                "size": args.size,
                "bounded": bounded,
                "unbounded": unbounded,
                "ratio": ratio,
                "ratio_means": "RSS growth held after the burst, bounded / count bound only",
            }
        )


if __name__ == "__main__":
    main()
