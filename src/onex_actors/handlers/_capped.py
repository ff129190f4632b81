"""Helpers shared by handlers: a size-limited response body, one envelope as a batch."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import aclosing

import httpx2
from pydantic import JsonValue

from onex_actors.core import HandlerError, OnexEnvelope
from onex_actors.runtime import BatchHandler

__all__ = ["one_of_batch", "read_capped"]


async def read_capped(
    response: httpx2.Response, limit: int, *, what: str, error_type: str
) -> bytes:
    """Return ``response``'s body; a non-retryable ``error_type`` once it passes ``limit``.

    A declared ``content-length`` over the limit is refused before anything is read.
    ``what`` names the body in the message (``response from http://...``).
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HandlerError(
            f"{what} declares {declared} bytes, over max_response_bytes={limit}",
            error_type=error_type,
            retryable=False,
        )
    chunks: list[bytes] = []
    size = 0
    async with aclosing(response.aiter_bytes()) as stream:
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise HandlerError(
                    f"{what} is over max_response_bytes={limit}",
                    error_type=error_type,
                    retryable=False,
                )
            chunks.append(chunk)
    return b"".join(chunks)


async def one_of_batch(handler: BatchHandler, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
    """Handle one envelope through ``handler``'s batch call (a batch of one)."""
    (outcome,) = await handler.execute_batch([envelope])
    if isinstance(outcome, HandlerError):
        raise outcome
    return outcome
