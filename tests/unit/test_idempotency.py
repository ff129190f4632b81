from __future__ import annotations

from onex_actors.core import IdempotencyCache, new_command, result_of


def test_answers_are_remembered_for_the_window() -> None:
    cache = IdempotencyCache(window_s=10, max_entries=100)
    command = new_command("echo-node", {})
    result = result_of(command, {})
    cache.remember(command.envelope_id, result, now=0)
    assert cache.get(command.envelope_id, now=9.9) == result
    assert cache.get(command.envelope_id, now=10) is None
    assert len(cache) == 0


def test_oldest_entries_leave_first_when_full() -> None:
    cache = IdempotencyCache(window_s=100, max_entries=2)
    commands = [new_command("echo-node", {"i": i}) for i in range(3)]
    for t, command in enumerate(commands):
        cache.remember(command.envelope_id, result_of(command, {}), now=t)
    assert cache.get(commands[0].envelope_id, now=3) is None
    assert cache.get(commands[2].envelope_id, now=3) is not None
    assert len(cache) == 2


def test_zero_entries_disables_it() -> None:
    cache = IdempotencyCache(window_s=100, max_entries=0)
    command = new_command("echo-node", {})
    cache.remember(command.envelope_id, result_of(command, {}), now=0)
    assert cache.get(command.envelope_id, now=0) is None
