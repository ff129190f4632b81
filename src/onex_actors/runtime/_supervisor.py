"""Supervising one node actor: restart by policy, stop past its intensity (SPEC §6)."""

from __future__ import annotations

import logging

import trio

from onex_actors.core import ActorExit, Restart, SupervisorState, decide

from ._actor import NodeActor
from ._health import NodeStatus

__all__ = ["supervise"]


async def supervise(
    actor: NodeActor, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run ``actor``, restarting it as its contract's restart policy says.

    Reports started once the first run is up. Returns when the actor has drained
    after its inbox closed, or, when stopped by policy, once the inbox is closed and
    every envelope left in it has been answered with an error.
    """
    policy = actor.contract.restart
    state = SupervisorState()
    started = False

    def on_started() -> None:
        nonlocal started
        if not started:
            started = True
            task_status.started()

    while True:
        exit = await actor.run_once(on_started)
        if actor.draining and exit is ActorExit.NORMAL:
            actor.status = NodeStatus.STOPPED
            return
        state, action = decide(policy, state, exit, trio.current_time())
        actor.restarts = state.total_restarts
        if not isinstance(action, Restart):
            actor.status = NodeStatus.STOPPED
            actor.healthy = action.healthy
            await actor.log.event(
                "node_stopped",
                {"node_id": actor.node_id, "reason": action.reason, "healthy": action.healthy},
                level=logging.ERROR if not action.healthy else logging.INFO,
            )
            await actor.reject_remaining(action.reason)
            return
        actor.status = NodeStatus.RESTARTING
        await actor.log.event(
            "node_restarting",
            {
                "node_id": actor.node_id,
                "exit": exit.value,
                "delay_s": action.delay_s,
                "restarts": state.total_restarts,
                "error": actor.last_error if exit is ActorExit.CRASHED else None,
            },
            level=logging.WARNING,
        )
        await trio.sleep(action.delay_s)
        await actor.requeue_in_flight()
