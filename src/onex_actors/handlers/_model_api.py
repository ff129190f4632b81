"""``ModelApi``: JSON requests to one OpenAI-compatible endpoint, with the runtime's rules.

Shared by the ``llm`` and ``embedding`` families: the endpoint comes from the host
config only; 429 and 5xx (and timeouts, refused connections) are retryable, honouring
``Retry-After``; other 4xx are not; a reply over its size limit is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Protocol, cast

import attrs
import httpx2
import trio
from pydantic import JsonValue

from onex_actors.core import HandlerError

from ._capped import read_capped

__all__ = ["LocalServer", "ModelApi", "ModelEndpoint"]

_RETRYABLE_STATUS = frozenset({408, 425, 429})


@attrs.frozen
class ModelEndpoint:
    """Where a model server answers and how it may be used (from the host config)."""

    name: str
    base_url: str
    """Up to and including the API version, e.g. ``http://127.0.0.1:8080/v1``."""
    api_key: str | None = attrs.field(default=None, repr=False)
    timeout_s: float = 60.0
    max_concurrency: int = 4


class LocalServer(Protocol):
    """The local server behind an endpoint, as far as its requests' errors need it."""

    def why_down(self) -> str | None:
        """How the server ended and where its log is, while it is down; else ``None``."""
        ...


class ModelApi:
    """POSTs JSON to one endpoint, at most ``max_concurrency`` requests at a time."""

    def __init__(
        self,
        endpoint: ModelEndpoint,
        client: httpx2.AsyncClient,
        *,
        local_server: LocalServer | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.client = client
        self.local_server = local_server
        """The server this host started for the endpoint (``None``: a configured one)."""
        self.limiter = trio.CapacityLimiter(endpoint.max_concurrency)
        self.requests = 0
        """Requests sent (each a whole batch for embeddings)."""
        self.last_error: str | None = None

    async def post(
        self, path: str, body: Mapping[str, JsonValue], *, max_response_bytes: int
    ) -> dict[str, JsonValue]:
        """Send ``body`` to ``path`` under the base URL; return the JSON object answered."""
        url = self.endpoint.base_url.rstrip("/") + path
        headers = {"content-type": "application/json"}
        if self.endpoint.api_key:
            headers["authorization"] = f"Bearer {self.endpoint.api_key}"
        where = f"{self.endpoint.name} endpoint {url}"
        async with self.limiter:
            self.requests += 1
            try:
                request = self.client.build_request(
                    "POST",
                    url,
                    content=json.dumps(body).encode(),
                    headers=headers,
                    timeout=self.endpoint.timeout_s,
                )
                response = await self.client.send(request, stream=True)
                try:
                    content = await read_capped(
                        response,
                        max_response_bytes,
                        what=f"{where} reply",
                        error_type="model_reply_too_large",
                    )
                finally:
                    await response.aclose()
            except httpx2.TimeoutException as exc:
                raise self._failed(f"{where} timed out: {exc!r}", "model_timeout") from None
            except httpx2.TransportError as exc:
                down = self._server_down()
                cause = f"; {down}" if down is not None else ""
                raise self._failed(f"{where} failed: {exc!r}{cause}", "model_unreachable") from None
        status = response.status_code
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise self._failed(
                f"{where} answered {status}: {content[:300]!r}",
                "model_status",
                retry_after_s=_retry_after(response),
            )
        if status >= 400:
            raise HandlerError(
                f"{where} answered {status}: {content[:500]!r} (a client error: not retried; "
                "check the contract's model and parameters)",
                error_type="model_status",
                retryable=False,
            )
        try:
            answer = json.loads(content)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise HandlerError(
                f"{where} answered {status} with no JSON object: {content[:300]!r}",
                error_type="model_bad_reply",
                retryable=False,
            )
        self.last_error = None
        return cast("dict[str, JsonValue]", answer)

    def trouble(self) -> str | None:
        """Why the endpoint is unhealthy (its last request failed, its local server is down)."""
        return self.last_error if self.last_error is not None else self._server_down()

    def _server_down(self) -> str | None:
        return self.local_server.why_down() if self.local_server is not None else None

    def _failed(
        self, message: str, error_type: str, *, retry_after_s: float | None = None
    ) -> HandlerError:
        self.last_error = message
        return HandlerError(
            message, error_type=error_type, retryable=True, retry_after_s=retry_after_s
        )


def _retry_after(response: httpx2.Response) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (an HTTP date is ignored)."""
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
