"""Supervision decisions, OTP style, as a pure function (SPEC §6, "Supervision").

``decide(policy, state, exit, now)`` says what to do when a node actor ends: restart it
after a backoff, or stop it. Restarts inside the sliding ``window_s`` count towards
``max_restarts`` (the intensity); past it the node is stopped and reported unhealthy.
"""

from __future__ import annotations

import enum

import attrs

from ._policies import RestartPolicy, RestartStrategy

__all__ = ["ActorExit", "Restart", "Stop", "SupervisorState", "decide"]


class ActorExit(enum.StrEnum):
    """How a node actor ended."""

    NORMAL = "normal"
    """It returned (e.g. its inbox closed)."""
    CRASHED = "crashed"
    """An exception escaped it: a bug in the node or its handler."""
    KILLED = "killed"
    """It was cancelled from outside (an operator or a test killed it)."""


@attrs.frozen
class SupervisorState:
    """What the supervisor remembers of one node between exits."""

    recent: tuple[float, ...] = ()
    """Times of the restarts still inside the window."""
    total_restarts: int = 0


@attrs.frozen
class Restart:
    """Start the actor again after ``delay_s``."""

    delay_s: float


@attrs.frozen
class Stop:
    """Leave the actor stopped. ``healthy`` is false when it was stopped for failing."""

    reason: str
    healthy: bool


def decide(
    policy: RestartPolicy, state: SupervisorState, exit: ActorExit, now: float
) -> tuple[SupervisorState, Restart | Stop]:
    """Decide what follows an actor's ``exit`` at time ``now`` (seconds, any monotonic clock)."""
    if policy.policy is RestartStrategy.TEMPORARY:
        return state, Stop(
            f"{exit.value}; restart policy is temporary", healthy=exit is ActorExit.NORMAL
        )
    if exit is ActorExit.NORMAL and policy.policy is RestartStrategy.TRANSIENT:
        return state, Stop("exited normally; restart policy is transient", healthy=True)
    recent = tuple(t for t in state.recent if now - t < policy.window_s)
    if len(recent) >= policy.max_restarts:
        reason = (
            f"{exit.value} after {len(recent)} restarts in {policy.window_s:g} s "
            f"(max_restarts {policy.max_restarts}); node stopped"
        )
        return SupervisorState(recent, state.total_restarts), Stop(reason, healthy=False)
    new_state = SupervisorState((*recent, now), state.total_restarts + 1)
    return new_state, Restart(policy.delay(len(recent) + 1))
