"""``HttpHandler``: an HTTP request per command, built from the contract and the payload."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import quote

import httpx2
from pydantic import JsonValue

from onex_actors.core import HandlerError, HttpEffect, OnexEnvelope
from onex_actors.runtime import HandlerHealth

from ._allowlist import HostAllowlist
from ._capped import read_capped
from ._http_clients import HttpClients

__all__ = ["HttpHandler"]

_RETRYABLE_STATUS = frozenset({408, 425, 429})
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
"""A W3C trace context header; any other value is not forwarded (W3C: ignore it)."""


class HttpHandler:
    """Sends the request a node's ``http:`` section describes.

    The URL template is filled from payload keys (URL-quoted). A host outside the
    allowlist is refused before any connection is made. 5xx, 408, 425, 429, timeouts and
    connection errors are retryable; other statuses are results: the event carries
    ``status``, ``headers`` and ``body`` (JSON when the response is JSON, else text).
    Redirects are not followed. Bodies over ``max_response_bytes`` are refused.
    """

    def __init__(self, effect: HttpEffect, clients: HttpClients, allowlist: HostAllowlist) -> None:
        self.effect = effect
        self.clients = clients
        self.allowlist = allowlist
        self._last_error: str | None = None

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        """Send the request and return ``{"status", "headers", "body"}``.

        What the envelope caused (a URL httpx2 refuses, a value that cannot be encoded) is
        a non-retryable ``invalid_request`` error; transport and server failures are
        retryable; anything else is a bug and crashes the actor.
        """
        try:
            return await self._execute(envelope)
        except (httpx2.InvalidURL, httpx2.UnsupportedProtocol, httpx2.LocalProtocolError) as exc:
            message = f"HTTP request refused by the client: {type(exc).__name__}: {exc}"
            raise _invalid(message) from None
        except UnicodeError as exc:
            raise _invalid(f"HTTP request cannot be encoded: {exc}") from None

    async def _execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        url = self._url(envelope.payload)
        if not self.allowlist.allows(url):
            raise HandlerError(
                f"{url.host}:{url.port or url.scheme} is not in the HTTP allowlist "
                f"({self.allowlist}); "
                "add it to http.allowlist in the config",
                error_type="http_host_not_allowed",
                retryable=False,
            )
        body = None
        if self.effect.body == "payload" and self.effect.method not in ("GET", "HEAD"):
            body = json.dumps(envelope.payload).encode()
        headers = dict(self.effect.headers)
        if body is not None:
            headers.setdefault("content-type", "application/json")
        traceparent = envelope.headers.get("traceparent", "")
        if _TRACEPARENT.fullmatch(traceparent):
            headers.setdefault("traceparent", traceparent)
        client = self.clients.next()
        request = client.build_request(self.effect.method, url, content=body, headers=headers)
        try:
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                content = await read_capped(
                    response,
                    self.effect.max_response_bytes,
                    what=f"response from {url}",
                    error_type="http_response_too_large",
                )
            finally:
                await response.aclose()
        except (httpx2.LocalProtocolError, httpx2.UnsupportedProtocol):
            raise  # the request itself is wrong, not the transport: see execute
        except httpx2.TimeoutException as exc:
            raise self._failed(
                f"HTTP {self.effect.method} {url} timed out: {exc!r}", "http_timeout"
            ) from None
        except httpx2.TransportError as exc:
            raise self._failed(
                f"HTTP {self.effect.method} {url} failed: {exc!r}", "http_connect"
            ) from None
        status = response.status_code
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise self._failed(
                f"HTTP {self.effect.method} {url} answered {status}: {content[:200]!r}",
                "http_status",
            )
        if 400 <= status <= 499 and status not in self.effect.accepted_statuses:
            raise HandlerError(
                f"HTTP {self.effect.method} {url} answered {status}: {content[:200]!r} "
                "(a client error: not retried; list the status in the contract's "
                "http.accepted_statuses if it is an answer)",
                error_type="http_status",
                retryable=False,
            )
        self._last_error = None
        return {
            "status": status,
            "headers": dict(response.headers),
            "body": _decode(response, content),
        }

    async def health_check(self) -> HandlerHealth:
        """Unhealthy while the last request failed for a transport or server reason."""
        return HandlerHealth(healthy=self._last_error is None, detail=self._last_error or "")

    async def aclose(self) -> None:
        """Do nothing: the client is shared per host and closed by its owner."""

    def _url(self, payload: Mapping[str, JsonValue]) -> httpx2.URL:
        values: dict[str, str] = {}
        for name in self.effect.placeholders:
            if name not in payload or payload[name] is None:
                raise HandlerError(
                    f"payload has no {name!r}, "
                    f"which url_template {self.effect.url_template!r} needs",
                    error_type="missing_parameter",
                    retryable=False,
                )
            value = payload[name]
            text = value if isinstance(value, str) else json.dumps(value)
            if text in (".", ".."):
                raise _invalid(
                    f"payload {name!r} is {text!r}, a path segment that would change the URL's "
                    f"path rather than fill url_template {self.effect.url_template!r}",
                    error_type="invalid_parameter",
                )
            values[name] = quote(text, safe="")
        return httpx2.URL(self.effect.url_template.format(**values))

    def _failed(self, message: str, error_type: str) -> HandlerError:
        self._last_error = message
        return HandlerError(message, error_type=error_type, retryable=True)


def _invalid(message: str, *, error_type: str = "invalid_request") -> HandlerError:
    return HandlerError(message[:2000], error_type=error_type, retryable=False)


def _decode(response: httpx2.Response, content: bytes) -> JsonValue:
    if "json" in response.headers.get("content-type", ""):
        try:
            decoded: JsonValue = json.loads(content)
        except ValueError:
            pass
        else:
            return decoded
    return content.decode(response.encoding or "utf-8", errors="replace")
