from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from onex_actors.core import (
    ActorExit,
    Restart,
    RestartPolicy,
    RestartStrategy,
    Stop,
    SupervisorState,
    decide,
)

POLICY = RestartPolicy(max_restarts=3, window_s=10, backoff_initial_s=1, backoff_max_s=4)


def test_permanent_restarts_with_growing_backoff_then_stops() -> None:
    state = SupervisorState()
    delays = []
    for now in (0.0, 1.0, 2.0):
        state, action = decide(POLICY, state, ActorExit.CRASHED, now)
        assert isinstance(action, Restart)
        delays.append(action.delay_s)
    assert delays == [1, 2, 4]
    state, action = decide(POLICY, state, ActorExit.CRASHED, 3.0)
    assert isinstance(action, Stop)
    assert not action.healthy
    assert "3 restarts in 10 s" in action.reason
    assert state.total_restarts == 3


def test_restarts_outside_the_window_are_forgotten() -> None:
    state = SupervisorState()
    for now in (0.0, 1.0, 2.0):
        state, _ = decide(POLICY, state, ActorExit.CRASHED, now)
    state, action = decide(POLICY, state, ActorExit.KILLED, 10.5)
    assert action == Restart(4)  # two restarts still in the window: third backoff step
    assert state.recent == (1.0, 2.0, 10.5)
    assert state.total_restarts == 4


def test_transient_and_temporary() -> None:
    transient = POLICY.model_copy(update={"policy": RestartStrategy.TRANSIENT})
    _, action = decide(transient, SupervisorState(), ActorExit.NORMAL, 0)
    assert action == Stop("exited normally; restart policy is transient", healthy=True)
    _, action = decide(transient, SupervisorState(), ActorExit.CRASHED, 0)
    assert isinstance(action, Restart)
    temporary = POLICY.model_copy(update={"policy": RestartStrategy.TEMPORARY})
    _, action = decide(temporary, SupervisorState(), ActorExit.CRASHED, 0)
    assert isinstance(action, Stop)
    assert not action.healthy


exits = st.sampled_from(ActorExit)
gaps = st.floats(min_value=0, max_value=5, allow_nan=False)


@given(
    st.lists(st.tuples(exits, gaps), max_size=60),
    st.integers(0, 6),
    st.sampled_from(RestartStrategy),
)
def test_never_more_than_intensity_restarts_in_a_window(
    events: list[tuple[ActorExit, float]], max_restarts: int, strategy: RestartStrategy
) -> None:
    policy = RestartPolicy(
        policy=strategy,
        max_restarts=max_restarts,
        window_s=10,
        backoff_initial_s=0.5,
        backoff_max_s=3,
    )
    state = SupervisorState()
    now = 0.0
    restarts: list[float] = []
    for exit, gap in events:
        now += gap
        state, action = decide(policy, state, exit, now)
        if isinstance(action, Stop):
            if strategy is RestartStrategy.PERMANENT:
                assert len([t for t in restarts if now - t < 10]) >= max_restarts
            break
        assert strategy is not RestartStrategy.TEMPORARY
        assert not (strategy is RestartStrategy.TRANSIENT and exit is ActorExit.NORMAL)
        assert 0 <= action.delay_s <= 3
        restarts.append(now)
        assert len([t for t in restarts if now - t < 10]) <= max_restarts
    assert state.total_restarts == len(restarts)
