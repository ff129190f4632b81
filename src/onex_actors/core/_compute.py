"""A compute node's decision: the result payload of one command, from its contract alone."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import JsonValue

from ._cel import CelExpression, ExpressionFailed
from ._envelope import OnexEnvelope
from ._errors import HandlerError

__all__ = ["computed_payload", "envelope_variables"]


def envelope_variables(envelope: OnexEnvelope, *, event: bool) -> dict[str, object]:
    """Return ``input`` (the payload), and ``event`` (the whole envelope) when asked for."""
    variables: dict[str, object] = {"input": envelope.payload}
    if event:
        variables["event"] = envelope.model_dump(mode="json")
    return variables


def computed_payload(
    node_id: str, expressions: Mapping[str, CelExpression], envelope: OnexEnvelope
) -> dict[str, JsonValue]:
    """Evaluate each field's expression over ``envelope``.

    ``HandlerError`` (``expression_failed``, not retryable) names the field whose
    expression failed: the command's answer is then an error and a dead letter.
    """
    uses_event = any("event" in expression.uses for expression in expressions.values())
    variables = envelope_variables(envelope, event=uses_event)
    try:
        return {name: expression.evaluate(variables) for name, expression in expressions.items()}
    except ExpressionFailed as exc:
        raise HandlerError(
            f"node {node_id!r}: {exc}", error_type="expression_failed", retryable=False
        ) from None
