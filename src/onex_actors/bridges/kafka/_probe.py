"""What the brokers support, asked once with kafka-python's admin client (ApiVersions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from onex_actors.core import BusError

__all__ = ["CONSUMER_GROUP_HEARTBEAT", "broker_api_keys"]

CONSUMER_GROUP_HEARTBEAT = 68
"""The API key of KIP-848's consumer group protocol (``group.protocol=consumer``)."""


def broker_api_keys(client_config: Mapping[str, Any], *, timeout_s: float = 10.0) -> set[int]:
    """Return the API keys the bootstrap broker advertises (blocking; call in a thread)."""
    try:
        admin = KafkaAdminClient(**client_config, request_timeout_ms=int(timeout_s * 1000))
    except (KafkaError, OSError, ValueError) as exc:
        raise BusError(
            f"cannot ask the brokers at {client_config.get('bootstrap_servers')} which "
            f"APIs they support: {type(exc).__name__}: {exc}"
        ) from None
    try:
        return {int(key) for key in admin.api_versions()}
    finally:
        admin.close()
