"""Compute nodes: a command's result made by CEL field expressions or a pure Python function."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pydantic import JsonValue

from onex_actors.core import ComputeContract, HandlerError, OnexEnvelope, computed_payload
from onex_actors.runtime import HandlerHealth, PureOutcome, Record

__all__ = ["ComputeHandler", "PayloadFunction"]

PayloadFunction = Callable[[dict[str, JsonValue]], Mapping[str, JsonValue]]
"""A compute node's Python function: the command's payload to the result's."""


class ComputeHandler:
    """Answers each command with ``compute.output`` evaluated, or ``compute.function`` called."""

    def __init__(self, contract: ComputeContract, function: PayloadFunction | None = None) -> None:
        self.node_id = contract.node_id
        self.function = function
        self.expressions = contract.compute.expressions
        if function is None and not self.expressions:
            raise ValueError(f"node {self.node_id!r}: compute.function was not given")

    def decide_batch(
        self, inputs: Sequence[tuple[OnexEnvelope, Record | None]]
    ) -> list[PureOutcome | HandlerError]:
        """Compute each command's result; a failure is that command's ``HandlerError``."""
        outcomes: list[PureOutcome | HandlerError] = []
        for envelope, _ in inputs:
            try:
                outcomes.append(PureOutcome(self._payload(envelope)))
            except HandlerError as exc:
                outcomes.append(exc)
        return outcomes

    def _payload(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        if self.function is None:
            return computed_payload(self.node_id, self.expressions, envelope)
        try:
            result = self.function(dict(envelope.payload))
        except Exception as exc:  # the user's function failing is the command's error
            raise HandlerError(
                f"node {self.node_id!r}: compute.function raised {type(exc).__name__}: {exc}",
                error_type="compute_failed",
                retryable=False,
            ) from None
        if not isinstance(result, Mapping):
            raise HandlerError(
                f"node {self.node_id!r}: compute.function returned a {type(result).__name__}, "
                "not a mapping (the result payload)",
                error_type="invalid_result",
                retryable=False,
            )
        return result

    async def execute(self, envelope: OnexEnvelope) -> Mapping[str, JsonValue]:
        """Compute one command's result (the runtime calls ``decide_batch``)."""
        return self._payload(envelope)

    async def health_check(self) -> HandlerHealth:
        """Report healthy: the node needs nothing outside."""
        return HandlerHealth(True)

    async def aclose(self) -> None:
        """Nothing to release."""
