"""What the listener's ``/state/<node>/<key>`` answers, and to whom.

Reducer state is business data: the route is off unless ``http.state.enabled``; with
tokens configured (required off loopback), a request needs ``Authorization: Bearer
<token>``, compared with every configured token in constant time, and reads only the
tenants that token is scoped to. The answer is this host's live view of the key: its
newest state (pending writes included), or why it cannot say (the partition is being
restored, or another member serves it: ask that one, or ``onex state`` for what the
changelog holds).
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

from onex_actors.core import GLOBAL_TENANT, home_partition, stored_key
from onex_actors.runtime import TopicPartition

from ._config import StateAccess

if TYPE_CHECKING:
    from ._host import RuntimeHost

__all__ = ["state_view"]

Answer = tuple[int, dict[str, object]]


def state_view(
    host: RuntimeHost, access: StateAccess, path: str, query: bytes, authorization: str | None
) -> Answer:
    """Answer ``GET /state/<node>/<key>[?tenant=T]`` (``path`` is the request's path)."""
    if not access.enabled:
        return 404, {"error": "not found: /state is off (http.state.enabled)"}
    tenant = parse_qs(query.decode("latin-1")).get("tenant", [GLOBAL_TENANT])[0]
    refused = _refused(access, authorization, tenant)
    if refused is not None:
        return refused
    parts = path.removeprefix("/state/").split("/", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return 400, {"error": "expected /state/<node>/<key>[?tenant=<tenant>]"}
    node_id, key = unquote(parts[0]), unquote(parts[1])
    handler = host.reducers.get(node_id)
    if handler is None:
        hosted = ", ".join(sorted(host.reducers)) or "none"
        return 404, {
            "error": f"{node_id!r} is not a reducer or orchestrator this host runs ({hosted})"
        }
    partition = home_partition(stored_key(tenant, key).encode(), handler.partitions)
    where = {"node_id": node_id, "tenant_id": tenant, "key": key, "partition": partition}
    restorer = host.restorer
    if restorer is not None and TopicPartition(handler.cmd_topic, partition) in restorer.restoring:
        return 503, {**where, "error": f"partition {partition} is being restored"}
    if partition not in handler.store.owned:
        return 404, {
            **where,
            "error": f"partition {partition} of {node_id} is not served by this host (another "
            "member serves it, or no command of it was read here yet); `onex state` reads "
            "what its changelog holds",
        }
    state = handler.store.get(partition, stored_key(tenant, key))
    if state is None:
        return 404, {**where, "error": "no state for this key"}
    return 200, {
        **where,
        "state": dict(state.value),
        "reflects": {"partition": state.partition, "offset": state.offset},
        "changed_at": state.changed_at,
    }


def _refused(access: StateAccess, authorization: str | None, tenant: str) -> Answer | None:
    """Why the request may not read ``tenant``'s state (``None``: it may)."""
    if not access.tokens:
        return None  # loopback only (the config refuses tokenless /state elsewhere)
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return 401, {"error": "a bearer token is required (Authorization: Bearer <token>)"}
    matched = None
    for entry in access.tokens:  # every token compared, in constant time each
        if hmac.compare_digest(entry.token.get_secret_value().encode(), given.encode()):
            matched = entry
    if matched is None:
        return 401, {"error": "the bearer token is not one of http.state.tokens"}
    if "*" not in matched.tenants and tenant not in matched.tenants:
        return 403, {"error": f"the token may not read tenant {tenant!r}'s state"}
    return None
