"""The host's Prometheus metrics, read from its own counters at scrape time.

Nothing is counted for Prometheus on the data path: the actors, the dispatcher, the
commit tracker and the outbox keep plain counters they keep anyway, and
``HostCollector`` turns them into metric families when ``/metrics`` is read. Names
follow Prometheus conventions (``onex_..._total`` counters, base units); each is
described in docs/operations.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import trio
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from onex_actors.handlers import EmbeddingHandler, LlmHandler
from onex_actors.runtime import Durations, Handler, NodeStatus, OrchestratorHandler

if TYPE_CHECKING:
    from ._host import RuntimeHost

__all__ = ["HostCollector", "host_registry"]

logger = logging.getLogger("onex_actors.host")


def host_registry(collector: HostCollector) -> CollectorRegistry:
    """Return a registry of the host's own (several hosts in one process never clash)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


class HostCollector(Collector):
    """Collects one host's metrics from its counters (see the module's docstring)."""

    def __init__(self, host: RuntimeHost) -> None:
        self.host = host
        self.handlers_up: dict[str, bool] = {}
        """Each node's handler health (its pool, client...), as of the last refresh."""

    async def refresh_handler_health(self, timeout_s: float = 2.0) -> None:
        """Ask every handler for its health, at once; one that fails or hangs is down."""
        results: dict[str, bool] = {}

        async def check(node_id: str, handler: Handler) -> None:
            results[node_id] = False
            with trio.move_on_after(timeout_s):
                try:
                    results[node_id] = (await handler.health_check()).healthy
                except Exception:  # a health check that raises says "not healthy"
                    logger.warning("health check of node %s raised", node_id, exc_info=True)

        async with trio.open_nursery() as nursery:
            for node_id, handler in self.host.handlers.items():
                nursery.start_soon(check, node_id, handler)
        self.handlers_up = results

    def _lag(self) -> Metric:
        lag = GaugeMetricFamily(
            "onex_consumer_lag",
            "Records past the host's last commit, per partition: the log end offset as of "
            "the partition's last fetch minus the committed offset.",
            labels=["topic", "partition"],
        )
        consumer = self.host.consumer_or_none
        if consumer is None:
            return lag
        committed = self.host.commits.committed_offsets()
        for tp, end in sorted(consumer.end_offsets().items()):
            if tp in committed:
                lag.add_metric([tp.topic, str(tp.partition)], max(0, end - committed[tp]))
        return lag

    def _state(self) -> Iterator[Metric]:
        """Yield the reducers' state: keys held, restores done, partitions restoring."""
        keys = GaugeMetricFamily(
            "onex_state_keys", "Keys a reducer holds (committed), here.", labels=["node"]
        )
        restored = CounterMetricFamily(
            "onex_state_restored_records",
            "Changelog records read back to restore a reducer's partitions.",
            labels=["node"],
        )
        restores = CounterMetricFamily(
            "onex_state_restores", "Partitions restored from a changelog.", labels=["node"]
        )
        seconds = CounterMetricFamily(
            "onex_state_restore_seconds", "Time spent restoring partitions.", labels=["node"]
        )
        restoring = GaugeMetricFamily(
            "onex_state_restoring_partitions",
            "A reducer's partitions being restored now (not served until restored).",
            labels=["node"],
        )
        sent_on = CounterMetricFamily(
            "onex_state_rekeyed",
            "Commands a reducer read off their key's partition and sent on to it.",
            labels=["node"],
        )
        retries = CounterMetricFamily(
            "onex_state_restore_retries",
            "Restores tried again because the brokers did not answer (the partition is not "
            "served until one reads).",
            labels=["node"],
        )
        coalesced = CounterMetricFamily(
            "onex_state_changelog_coalesced",
            "Changelog records not written because a later record of the same key went "
            "with them (in a slice's outputs, or in a transaction).",
            labels=["node"],
        )
        restorer = self.host.restorer
        for node_id, handler in sorted(self.host.reducers.items()):
            keys.add_metric([node_id], len(handler.store))
            sent_on.add_metric([node_id], handler.rekeyed)
            coalesced.add_metric([node_id], self.host.outbox.coalesced[handler.state_topic])
            done = [r for r in (restorer.restores if restorer else []) if r.node_id == node_id]
            restored.add_metric([node_id], sum(r.records for r in done))
            restores.add_metric([node_id], len(done))
            retries.add_metric([node_id], restorer.retries[node_id] if restorer else 0)
            seconds.add_metric([node_id], sum(r.seconds for r in done))
            now = [
                tp
                for tp in (restorer.restoring if restorer else ())
                if tp.topic == handler.cmd_topic
            ]
            restoring.add_metric([node_id], len(now))
        yield from (keys, restored, restores, retries, seconds, restoring, sent_on, coalesced)
        yield from self._workflows()

    def _workflows(self) -> Iterator[Metric]:
        """Yield the orchestrators' instances by outcome, and what they ignored."""
        instances = CounterMetricFamily(
            "onex_workflow_instances",
            "Workflow instances decided here, by what happened: started, completed, failed, "
            "compensated, compensation_failed.",
            labels=["node", "outcome"],
        )
        running = GaugeMetricFamily(
            "onex_workflow_running",
            "Instances started here and not ended here (moved partitions aside).",
            labels=["node"],
        )
        ignored = CounterMetricFamily(
            "onex_workflow_ignored",
            "Records that changed no instance, by why: late (an old attempt's result, or "
            "one for an ended instance), duplicate, stale_timer, no_instance.",
            labels=["node", "reason"],
        )
        steps = HistogramMetricFamily(
            "onex_workflow_step_duration_seconds",
            "Step attempts ended, by how (ok, error, timed_out; a compensation's: "
            "compensated, compensation_error, compensation_timed_out): seconds from the "
            "command to its result (the step node's clock) or to its timeout.",
            labels=["node", "step", "outcome"],
        )
        ended = ("completed", "failed", "compensated", "compensation_failed")
        for node_id, handler in sorted(self.host.reducers.items()):
            if not isinstance(handler, OrchestratorHandler):
                continue
            counts = handler.counts
            for outcome in ("started", *ended):
                instances.add_metric([node_id, outcome], counts.get(outcome, 0))
            running.add_metric(
                [node_id], max(0, counts.get("started", 0) - sum(counts.get(e, 0) for e in ended))
            )
            for reason in ("late", "duplicate", "stale_timer", "no_instance"):
                ignored.add_metric([node_id, reason], counts.get(reason, 0))
            for (step, outcome), timing in sorted(handler.step_durations.items()):
                steps.add_metric([node_id, step, outcome], _buckets(timing), timing.sum_s)
        yield from (instances, running, ignored, steps)

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family of the host, as of now."""
        host = self.host
        runtime = host.runtime_or_none
        received = CounterMetricFamily(
            "onex_envelopes_received", "Command envelopes queued for a node.", labels=["node"]
        )
        answered = CounterMetricFamily(
            "onex_envelopes_answered",
            "Commands answered by a node, by result status (ok or error).",
            labels=["node", "status"],
        )
        dead = CounterMetricFamily(
            "onex_envelopes_dead_lettered",
            "Dead letters written, by the node whose dlq topic took them and the reason.",
            labels=["node", "reason"],
        )
        duplicates = CounterMetricFamily(
            "onex_envelopes_duplicate",
            "Redelivered commands answered again from the idempotency window.",
            labels=["node"],
        )
        restarts = CounterMetricFamily(
            "onex_node_restarts", "Restarts of a node's actor.", labels=["node"]
        )
        pauses = CounterMetricFamily(
            "onex_inbox_pauses", "Times a full inbox paused its partitions.", labels=["node"]
        )
        depth = GaugeMetricFamily(
            "onex_inbox_depth", "Envelopes waiting in a node's inbox.", labels=["node"]
        )
        in_flight = GaugeMetricFamily(
            "onex_envelopes_in_flight", "Envelopes a node's workers hold.", labels=["node"]
        )
        up = GaugeMetricFamily(
            "onex_node_up",
            "1 while a node runs or restarts within its intensity, 0 once it stopped.",
            labels=["node"],
        )
        durations = HistogramMetricFamily(
            "onex_handler_duration_seconds",
            "Handler call durations (a batch call counts once).",
            labels=["node"],
        )
        nodes = {} if runtime is None else runtime.actors
        for node_id, actor in nodes.items():
            received.add_metric([node_id], actor.inbox.received)
            answered.add_metric([node_id, "ok"], actor.handled_ok)
            answered.add_metric([node_id, "error"], actor.handled_error)
            for reason, count in sorted(actor.dead_letter_reasons.items()):
                dead.add_metric([node_id, reason], count)
            duplicates.add_metric([node_id], actor.duplicates_skipped)
            restarts.add_metric([node_id], actor.restarts)
            pauses.add_metric([node_id], actor.inbox.pauses)
            depth.add_metric([node_id], len(actor.inbox))
            in_flight.add_metric([node_id], len(actor.in_flight) + len(actor.redo))
            up.add_metric([node_id], 0 if actor.status is NodeStatus.STOPPED else 1)
            timing = actor.handler_durations
            durations.add_metric([node_id], _buckets(timing), timing.sum_s)
        owners = host.dlq_owners()
        for (topic, reason), count in sorted(host.dead_letters.items()):
            dead.add_metric([owners.get(topic, topic), reason], count)
        yield from (received, answered, dead, duplicates, restarts, pauses, depth, in_flight)
        handler_up = GaugeMetricFamily(
            "onex_handler_up",
            "1 while a node's handler says it is healthy (its DB pool answers a ping; its "
            "HTTP client's last request did not fail for a transport or server reason).",
            labels=["node"],
        )
        for node_id, healthy in sorted(self.handlers_up.items()):
            handler_up.add_metric([node_id], 1 if healthy else 0)
        yield from (up, durations, handler_up)
        model_requests = CounterMetricFamily(
            "onex_model_requests",
            "Requests sent to a model server by an llm or embedding node (an embedding "
            "request carries a whole slice of commands).",
            labels=["node", "endpoint"],
        )
        for node_id, handler in sorted(host.handlers.items()):
            if isinstance(handler, LlmHandler | EmbeddingHandler):
                model_requests.add_metric([node_id, handler.api.endpoint.name], handler.requests)
        yield model_requests
        yield CounterMetricFamily(
            "onex_commits", "Offset commits the bus took.", value=host.commits.commits
        )
        yield CounterMetricFamily(
            "onex_commit_failures",
            "Offset commits the bus refused (tried again at the next interval).",
            value=host.commits.failed_commits,
        )
        yield CounterMetricFamily(
            "onex_producer_failed_records",
            "Records the producer could not deliver (results answered as errors instead).",
            value=host.outbox.failed,
        )
        yield CounterMetricFamily(
            "onex_transactions_aborted",
            "Kafka transactions aborted (delivery: exactly_once); their input records are "
            "read again.",
            value=host.delivery.aborted,
        )
        yield GaugeMetricFamily(
            "onex_outputs_held",
            "Outputs waiting for a later transaction (delivery: exactly_once).",
            value=host.outbox.held,
        )
        yield self._lag()
        yield from self._state()
        yield GaugeMetricFamily(
            "onex_consumer_assigned",
            "1 once the consumer has had partitions.",
            value=1 if host.assigned else 0,
        )
        yield GaugeMetricFamily(
            "onex_draining", "1 while the host drains before it stops.", value=int(host.draining)
        )


def _buckets(durations: Durations) -> list[tuple[str, float]]:
    """Return ``durations``' cumulative buckets as Prometheus wants them."""
    cumulative, buckets = 0, []
    for bound, count in zip((*durations.buckets, float("inf")), durations.counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
    return buckets
