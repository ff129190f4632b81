"""Moving a node between runtimes: where its command partitions resume, before joining.

Before a host on Kafka joins its consumer group, it reads what every runtime of the
contract tree has committed on the command topics of the nodes it hosts, and
``core.plan_resume`` decides (the furthest commit of any runtime wins; a node nobody
committed for starts from its ``start_from``). What its own group is behind on is
committed into it first, so the consumer starts there. Another runtime that reads one of
these nodes' commands now makes the host wait for it to leave (a runtime killed a moment
ago still holds its partitions until its session ends), then refuse to start, naming it.
"""

from __future__ import annotations

import logging
import math

import attrs
import trio

from onex_actors.bridges.kafka import commit_group_offsets, read_groups
from onex_actors.core import BusError, ConfigError, NodeTopic, ResumePlan, RoutingTable, plan_resume

from ._config import HostConfig
from ._kafka_clients import kafka_client_config

__all__ = ["NodeResume", "hand_over"]

logger = logging.getLogger("onex_actors.host")


@attrs.frozen
class NodeResume:
    """Where one hosted node resumed: its group, and each partition's offset and source."""

    group: str
    offsets: dict[int, int | None]
    source: str
    """The resume points' sources, deduplicated (``group runtime-dev-light``...)."""

    def as_json(self) -> dict[str, object]:
        """Return it as JSON-ready data."""
        return {
            "group": self.group,
            "source": self.source,
            "offsets": {str(p): o for p, o in sorted(self.offsets.items())},
        }


async def hand_over(
    table: RoutingTable,
    config: HostConfig,
    group_id: str,
    other_groups: list[str],
    *,
    wait_s: float | None = None,
) -> dict[str, NodeResume]:
    """Resume the hosted nodes' command partitions where they were last committed.

    Waits up to ``wait_s`` (default: twice the session timeout) for another runtime that
    reads a hosted node's commands to leave; raises ``ConfigError`` naming it if it stays.
    """
    client_config = kafka_client_config(config.kafka)
    topics = [node.cmd_topic for node in table.hosted.values()]
    if not topics:
        return {}
    if wait_s is None:
        wait_s = config.kafka.hand_over_wait_s
    if wait_s is None:
        wait_s = 2 * config.kafka.session_timeout_ms / 1000
    deadline = trio.current_time() + wait_s
    said_waiting = False
    while True:
        try:
            seen = await trio.to_thread.run_sync(
                read_groups, client_config, group_id, other_groups, topics
            )
        except BusError as exc:
            logger.warning(
                "%s: no hand-over (%s): the hosted nodes start from this group's own "
                "commits, or their start_from",
                table.runtime_id,
                exc,
            )
            return {}
        nodes = [
            NodeTopic(
                node_id,
                node.cmd_topic,
                seen.partitions.get(node.cmd_topic, 0),
                start_from=node.contract.start_from,
                fan_out=node.contract.fan_out,
            )
            for node_id, node in table.hosted.items()
        ]
        plan = plan_resume(
            nodes, seen.own, seen.others, ends=seen.ends, live_readers=seen.live_readers
        )
        if not plan.conflicts:
            break
        if trio.current_time() >= deadline:
            raise ConfigError(_conflict_message(table.runtime_id, plan, wait_s))
        if not said_waiting:
            said_waiting = True
            logger.warning(
                "%s: waiting up to %gs for %s to leave",
                table.runtime_id,
                wait_s,
                "; ".join(_readers(plan)),
            )
        await trio.sleep(min(1.0, max(0.0, deadline - trio.current_time())))
    if plan.commit:
        if seen.own_live:
            logger.info(
                "%s: group %s has live members: they keep its offsets (no hand-over)",
                table.runtime_id,
                group_id,
            )
        else:
            await trio.to_thread.run_sync(
                commit_group_offsets, client_config, group_id, plan.commit
            )
    resumed = _resumed(plan, group_id)
    for node_id, resume in resumed.items():
        offsets = ", ".join(
            f"p{p}@{'start' if o is None else o}" for p, o in sorted(resume.offsets.items())
        )
        moved = "group " in resume.source or "log end" in resume.source
        logger.log(
            logging.INFO if moved else logging.DEBUG,
            "%s: %s resumes at %s (%s)",
            table.runtime_id,
            node_id,
            offsets,
            resume.source,
        )
    return resumed


def _resumed(plan: ResumePlan, group_id: str) -> dict[str, NodeResume]:
    resumed = {}
    for node_id, points in plan.by_node().items():
        sources = ", ".join(dict.fromkeys(point.source for point in points)) or "no partitions"
        resumed[node_id] = NodeResume(
            group_id, {point.partition: point.offset for point in points}, sources
        )
    return resumed


def _readers(plan: ResumePlan) -> list[str]:
    return [
        f"{', '.join(groups)} (reads {node_id}'s commands)"
        for node_id, groups in sorted(plan.conflicts.items())
    ]


def _conflict_message(runtime_id: str, plan: ResumePlan, wait_s: float) -> str:
    described = "; ".join(
        f"node {node_id!r} is hosted by the running consumer group(s) {', '.join(groups)}"
        for node_id, groups in sorted(plan.conflicts.items())
    )
    waited = "" if math.isinf(wait_s) else f" (waited {wait_s:g} s for them to leave)"
    return (
        f"runtime {runtime_id!r} will not start: {described}{waited}. A node is answered "
        "once per cluster: stop the other runtime first (the node then resumes here where "
        "it left off), or set fan_out: true in the node's contract if every runtime "
        "should answer it"
    )
