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


def test_kept_answers_are_bounded_in_bytes() -> None:
    cache: IdempotencyCache[bytes] = IdempotencyCache(
        window_s=100, max_entries=1000, max_bytes=10_000
    )
    commands = [new_command("echo-node", {"i": i}) for i in range(50)]
    for t, command in enumerate(commands):
        cache.remember(command.envelope_id, b"x" * 900, now=t, size=900)
        assert cache.bytes <= 10_000
    assert len(cache) == 11
    assert cache.bytes == 11 * 900
    assert cache.get(commands[-1].envelope_id, now=50) == b"x" * 900
    assert cache.get(commands[0].envelope_id, now=50) is None


def test_an_answer_larger_than_the_budget_is_not_kept() -> None:
    cache: IdempotencyCache[bytes] = IdempotencyCache(window_s=100, max_entries=10, max_bytes=100)
    small, big = new_command("echo-node", {}), new_command("echo-node", {})
    cache.remember(small.envelope_id, b"s", now=0, size=1)
    cache.remember(big.envelope_id, b"b" * 101, now=1, size=101)
    assert cache.get(big.envelope_id, now=1) is None
    assert cache.get(small.envelope_id, now=1) == b"s"
    assert cache.bytes == 1


def test_remembering_again_replaces_the_answer_and_its_size() -> None:
    cache: IdempotencyCache[str] = IdempotencyCache(window_s=100, max_entries=10, max_bytes=100)
    command = new_command("echo-node", {})
    cache.remember(command.envelope_id, "ok", now=0, size=60)
    cache.remember(command.envelope_id, "error", now=1, size=10)
    assert cache.get(command.envelope_id, now=1) == "error"
    assert cache.bytes == 10
    assert len(cache) == 1
