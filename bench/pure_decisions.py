"""What deciding costs in-process: a fold per key, and a three-step workflow, no broker.

The same nodes as ``kafka_echo.py``'s fold (``key: input.k``, ``fold: {count:
state.count + 1}``) and ``workflow.py``'s orchestrator (three steps, one after another),
driven through their handlers' ``decide_batch`` as the runtime drives them (slices of
``--slice`` records, each with its partition and offset) with the host's GC threshold.
Timed with the process's CPU clock, medians of ``--runs``:

- **fold**: ``decide_batch`` over ``--commands`` commands spread over ``--keys`` keys, in
  µs a command; and with each answer built and encoded as the runtime sends it;
- **echo answer** (the baseline): what the echo node does for a command beyond the
  runtime's common path, its result built and encoded;
- **workflow**: the orchestrator's four decisions of each of ``--workflows`` workflows
  (the start and three results, each result brought back as the runtime brings it), the
  step commands and answer encoded, in µs a workflow.

    python bench/pure_decisions.py [--commands 20000] [--keys 10000] [--workflows 2000]
        [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from onex_actors.core import (
    OnexEnvelope,
    OrchestratorContract,
    ReducerContract,
    encode_envelope,
    home_partition,
    new_command,
    pure_result_of,
    record_key_and_headers,
    result_of,
    stored_key,
)
from onex_actors.runtime._orchestrator_node import OrchestratorHandler
from onex_actors.runtime._ports import PureOutcome, Record
from onex_actors.runtime._reducer_node import ReducerHandler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import add_json_flag, print_json

PARTITIONS = 4
HOST_GC_THRESHOLD = 500_000
"""The host's young-generation threshold (``gc_threshold``), set here as the host sets it."""

FOLD = """kind: reducer
node_id: fold-bench
version: '0.1.0'
key: input.k
state: {initial: {count: 0}}
fold: {assign: {count: state.count + 1}}
"""


def workflow_contract() -> OrchestratorContract:
    """``workflow.py``'s orchestrator: steps s1 -> s2 -> s3, each carrying ``pad`` on."""
    steps = "\n".join(
        f"    - name: s{i}\n      node_id: echo{i}\n"
        + (f"      depends_on: [s{i - 1}]\n" if i > 1 else "")
        + f"      payload: {{pad: {'input.pad' if i == 1 else f'steps.s{i - 1}.output.pad'}}}"
        for i in (1, 2, 3)
    )
    document = yaml.safe_load(
        "kind: orchestrator\nnode_id: flow-bench\nversion: '0.1.0'\nworkflow:\n  steps:\n"
        f"{steps}\n  output: {{pad: steps.s3.output.pad}}\n"
    )
    return OrchestratorContract.model_validate(document)


def median_cpu_s(action: Callable[[], object], runs: int) -> float:
    """The median CPU time of ``runs`` calls of ``action``."""
    times = []
    for _ in range(runs):
        started = time.process_time()
        action()
        times.append(time.process_time() - started)
    return statistics.median(times)


class Partitions:
    """Offsets handed out per partition, as the records of a topic's partitions."""

    def __init__(self) -> None:
        self.next = [0] * PARTITIONS

    def record(self, partition: int) -> Record:
        """The next record of ``partition`` (its value is not read by a handler)."""
        offset = self.next[partition]
        self.next[partition] += 1
        return Record("cmd", partition, offset, None, None)


def fold_commands(count: int, keys: int) -> list[tuple[OnexEnvelope, Record]]:
    """``count`` commands over ``keys`` keys, each in its key's partition, in read order."""
    partitions = Partitions()
    made = []
    for i in range(count):
        key = f"key-{i % keys}"
        command = new_command("fold-bench", {"k": key, "pad": "x" * 40})
        home = home_partition(stored_key(command.tenant_id, key).encode(), PARTITIONS)
        made.append((command, partitions.record(home)))
    return made


def fold_handler() -> ReducerHandler:
    """A fold node's handler holding every partition (restored, empty)."""
    contract = ReducerContract.model_validate(yaml.safe_load(FOLD))
    handler = ReducerHandler(
        contract, cmd_topic="cmd", state_topic="state", intent_topics={}, partitions=PARTITIONS
    )
    handler.store.owned.update(range(PARTITIONS))
    return handler


def decide_all(commands: Sequence[tuple[OnexEnvelope, Record]], size: int, *, answer: bool) -> None:
    """Decide ``commands`` in slices of ``size`` with a fresh handler; build each answer."""
    handler = fold_handler()
    for start in range(0, len(commands), size):
        inputs = commands[start : start + size]
        outcomes = handler.decide_batch(inputs)
        if not answer:
            continue
        for (command, _), outcome in zip(inputs, outcomes, strict=True):
            assert isinstance(outcome, PureOutcome)
            assert outcome.payload is not None
            evt = pure_result_of(
                command, outcome.payload, contract_id="fold-bench@0.1.0", payload_is_json=True
            )
            encode_envelope(evt)
            record_key_and_headers(evt)


def echo_answers(commands: Sequence[tuple[OnexEnvelope, Record]]) -> None:
    """Build and encode the echo's result of each command (the baseline)."""
    for command, _ in commands:
        evt = result_of(command, command.payload)
        encode_envelope(evt)
        record_key_and_headers(evt)


def run_workflows(contract: OrchestratorContract, count: int, size: int) -> int:
    """Drive ``count`` workflows to their answers; return how many records were decided.

    Each step command is answered at once with its own payload (an echo), its result
    brought to the instance's partition as the runtime brings it.
    """
    handler = OrchestratorHandler(
        contract, cmd_topic="cmd", evt_topic="evt", state_topic="state", partitions=PARTITIONS
    )
    handler.store.owned.update(range(PARTITIONS))
    partitions = Partitions()
    pending: list[tuple[OnexEnvelope, Record]] = []
    for _ in range(count):
        start = new_command("flow-bench", {"pad": "x" * 40})
        instance = stored_key(start.tenant_id, str(start.correlation_id)).encode()
        pending.append((start, partitions.record(home_partition(instance, PARTITIONS))))
    decided = 0
    while pending:
        inputs, pending = pending[:size], pending[size:]
        outcomes = handler.decide_batch(inputs)
        decided += len(inputs)
        for (_, record), outcome in zip(inputs, outcomes, strict=True):
            assert isinstance(outcome, PureOutcome)
            for sent, topic, _ in outcome.commands:
                encode_envelope(sent)
                record_key_and_headers(sent)
                if topic == "evt":  # the workflow's answer
                    continue
                pending.append((result_of(sent, sent.payload), partitions.record(record.partition)))
    return decided


def main() -> None:
    """Time the fold, the echo's answer and the workflow; print µs and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--workflows", type=int, default=2_000)
    parser.add_argument("--slice", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    add_json_flag(parser)
    args = parser.parse_args()
    gc.set_threshold(HOST_GC_THRESHOLD, *gc.get_threshold()[1:])
    commands = fold_commands(args.commands, args.keys)
    contract = workflow_contract()
    decided = run_workflows(contract, args.workflows, args.slice)
    assert decided == 4 * args.workflows, f"{decided} records decided, not 4 a workflow"

    per_command = 1e6 / args.commands
    fold_us = median_cpu_s(lambda: decide_all(commands, args.slice, answer=False), args.runs)
    fold_answered_us = median_cpu_s(
        lambda: decide_all(commands, args.slice, answer=True), args.runs
    )
    echo_us = median_cpu_s(lambda: echo_answers(commands), args.runs)
    workflow_us = median_cpu_s(
        lambda: run_workflows(contract, args.workflows, args.slice), args.runs
    )
    figures = {
        "commands": args.commands,
        "keys": args.keys,
        "workflows": args.workflows,
        "runs": args.runs,
        "fold_decide_us": round(fold_us * per_command, 2),
        "fold_answered_us": round(fold_answered_us * per_command, 2),
        "echo_answer_us": round(echo_us * per_command, 2),
        "workflow_us": round(workflow_us * 1e6 / args.workflows, 1),
        "ratio": round(fold_answered_us / echo_us, 2),
    }
    print(f"medians of {args.runs} runs, CPU time, slices of {args.slice}:")
    print(f"fold, decide_batch alone       {figures['fold_decide_us']:7.2f} µs a command")
    print(f"fold, decided and answered     {figures['fold_answered_us']:7.2f} µs a command")
    print(f"echo, its answer (baseline)    {figures['echo_answer_us']:7.2f} µs a command")
    print(f"workflow of three steps        {figures['workflow_us']:7.1f} µs a workflow")
    print(f"fold answered / echo's answer: {figures['ratio']:.2f}")
    if args.json:
        print_json(figures)


if __name__ == "__main__":
    main()
