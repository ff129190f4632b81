"""A flood at a slow node over a real broker: buffers stay bounded, no rebalance."""

from __future__ import annotations

import resource
import sys
from collections.abc import Mapping

import trio
from pydantic import JsonValue
from tests.contracts import RUNTIME_ID, effect, registry
from tests.handlers import ScriptedHandler
from tests.integration.processes import REPO
from tests.kafka_support import NamespacedBus, NamespacedConsumer

from onex_actors.bridges.confluent import ConfluentConsumerBridge
from onex_actors.bridges.kafka import KafkaConsumerBridge
from onex_actors.core import OnexEnvelope, cmd_topic
from onex_actors.testing import open_test_host

FLOOD = 200_000
INBOX = 64
MAX_POLL_RECORDS = 500


class SlowHandler(ScriptedHandler):
    async def behave(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        await trio.sleep(0.002)
        return {"i": envelope.payload["i"]}


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_flood_keeps_buffers_bounded_and_the_group_stable(
    kafka_bus: NamespacedBus, kafka_bootstrap: str
) -> None:
    handler = SlowHandler()
    # one at a time: a slow node (64 at once would keep up, and the test's collector of
    # results, not the host, would then hold most of the memory)
    contracts = registry(effect("slow-node", inbox_size=INBOX, concurrency=1))
    async with open_test_host(
        RUNTIME_ID, contracts=contracts, bus=kafka_bus, handlers={"slow-node": handler}
    ) as host:
        await host.request("slow-node", {"i": -1, "warm": True})
        consumer = host.host._consumer
        assert isinstance(consumer, NamespacedConsumer)
        bridge = consumer.inner
        assert isinstance(bridge, KafkaConsumerBridge | ConfluentConsumerBridge)
        rebalances_before = bridge.rebalances
        rss_before = rss_mib()
        producer = await trio.run_process(
            [
                sys.executable,
                str(REPO / "bench" / "_kafka.py"),
                kafka_bootstrap,
                kafka_bus.topic(cmd_topic("slow-node")),
                "slow-node",
                str(FLOOD),
            ],
            cwd=REPO,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert producer.returncode == 0, producer.stderr
        inbox = host.host.runtime.actor("slow-node").inbox
        peak_inbox = peak_outstanding = 0
        for _ in range(40):  # sample for ~10 s while the node works through the flood
            await trio.sleep(0.25)
            node = host.health().nodes["slow-node"]
            peak_inbox = max(peak_inbox, node.inbox_depth)
            peak_outstanding = max(peak_outstanding, bridge._outstanding)
        handled = len(handler.calls)
        rss_growth = rss_mib() - rss_before
        rebalances = bridge.rebalances - rebalances_before
    assert inbox.pauses >= 1
    assert handled < FLOOD  # still flooded when we looked
    # The pause comes when the inbox reaches its size, part way through a poll: the rest
    # of that poll, and the (at most 4) polls already handed to trio, still arrive. All
    # the node holds therefore stays under the inbox size plus five polls.
    assert peak_inbox < INBOX + 5 * MAX_POLL_RECORDS
    assert peak_outstanding <= 4
    assert rebalances == 0
    assert rss_growth < 150, f"host RSS grew {rss_growth:.0f} MiB under a {FLOOD}-command flood"
