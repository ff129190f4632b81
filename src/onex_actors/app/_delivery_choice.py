"""The one place that reads ``delivery.mode``: which strategy a host runs, and what it needs.

The strategies themselves live in ``onex_actors.runtime`` (``AtLeastOnce``,
``ExactlyOnce``); this picks one from the config, with the outbox it drives and the
producer's transactional id, and refuses a mode the rest of the config cannot serve.
"""

from __future__ import annotations

import os
import socket

from onex_actors.core import ConfigError
from onex_actors.runtime import AtLeastOnce, Bus, CommitTracker, Delivery, ExactlyOnce, Outbox

from ._config import HostConfig

__all__ = ["check_delivery", "delivery_for", "transactional_id_for"]


def delivery_for(
    config: HostConfig, bus: Bus, runtime_id: str
) -> tuple[CommitTracker, Outbox, Delivery]:
    """Return the partition units, the outbox and the strategy of ``config.delivery.mode``.

    At least once, a partition about to be revoked has its done offset committed
    first; exactly once, offsets are committed only in transactions with their outputs.
    """
    delivery = config.delivery
    if delivery.mode != "exactly_once":
        commits = CommitTracker(commit_before_revoke=True)
        outbox = Outbox(bus, max_envelope_bytes=config.max_envelope_bytes)
        return commits, outbox, AtLeastOnce(commits, config.commit_interval_s)
    commits = CommitTracker(commit_before_revoke=False)
    outbox = Outbox(bus, max_envelope_bytes=config.max_envelope_bytes, holds_outputs=True)
    return (
        commits,
        outbox,
        ExactlyOnce(
            bus,
            commits,
            outbox,
            runtime_id,
            interval_s=delivery.transaction_interval_s,
            max_records=delivery.max_transaction_records,
        ),
    )


def transactional_id_for(config: HostConfig, group_id: str) -> str | None:
    """Return the producer's transactional id with ``delivery: exactly_once``, else None.

    ``delivery.transactional_id``, or one unique to this process: ``<group>-<host
    name>-<pid>``.
    """
    if config.delivery.mode != "exactly_once":
        return None
    return config.delivery.transactional_id or f"{group_id}-{socket.gethostname()}-{os.getpid()}"


def check_delivery(config: HostConfig) -> None:
    """Refuse ``delivery: exactly_once`` where it cannot work, saying what would."""
    if config.delivery.mode != "exactly_once":
        return
    if config.bus.kind != "kafka":
        raise ConfigError(
            "delivery.mode is exactly_once, which commits results and offsets in Kafka "
            "transactions, but bus.kind is inprocess: use bus.kind: kafka, or "
            "delivery.mode: at_least_once"
        )
