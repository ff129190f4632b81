"""The CLIs' small manners: a quiet log at the default level, honest broker messages."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from onex_actors.cli import app
from onex_actors.cli._client import _keyed_for_its_state, parse_payload
from onex_actors.cli._host import FOREIGN_LOGGERS, quiet_foreign_loggers
from onex_actors.core import PARTITION_KEY_HEADER, ConfigError, KeyState, new_command


@pytest.fixture(autouse=True)
def restored_levels() -> Iterator[None]:
    levels = {name: logging.getLogger(name).level for name in FOREIGN_LOGGERS}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_libraries_log_warnings_only_at_info() -> None:
    quiet_foreign_loggers("INFO")
    kafka = logging.getLogger("kafka.conn")
    assert not kafka.isEnabledFor(logging.INFO)
    assert kafka.isEnabledFor(logging.WARNING)
    assert logging.getLogger("asyncpg").getEffectiveLevel() == logging.WARNING


def test_a_stricter_level_applies_to_libraries_too() -> None:
    quiet_foreign_loggers("ERROR")
    assert not logging.getLogger("kafka").isEnabledFor(logging.WARNING)


def test_debug_leaves_every_library_speaking() -> None:
    logging.getLogger("kafka").setLevel(logging.NOTSET)
    quiet_foreign_loggers("DEBUG")
    assert logging.getLogger("kafka").level == logging.NOTSET


def test_broker_down_with_nothing_running_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from onex_actors.cli._broker import down

    assert down(kind="kafka", port=39999, home=tmp_path) == 0
    assert capsys.readouterr().out.strip() == (
        "no kafka broker started by onex broker up runs on 127.0.0.1:39999"
    )


def test_json_log_lines_carry_the_runtime_event_fields() -> None:
    from onex_actors.cli._logs import JsonLogFormatter

    record = logging.LogRecord(
        "onex_actors.runtime", logging.WARNING, __file__, 1, "%s %s", ("rt", "dead_letter"), None
    )
    record.onex = {"event": "dead_letter", "correlation_id": "c-1", "level": "clash"}
    line = json.loads(JsonLogFormatter().format(record))
    assert (line["level"], line["logger"]) == ("WARNING", "onex_actors.runtime")
    assert line["message"] == "rt dead_letter"
    assert (line["event"], line["correlation_id"]) == ("dead_letter", "c-1")


def test_onex_emit_keys_a_command_where_its_state_lives() -> None:
    """A reducer's command by its state key, an orchestrator's start by its instance."""
    contracts = Path(__file__).resolve().parents[2] / "contracts"
    deposit = new_command("account", {"account_id": "a1", "trigger": "deposit", "amount": 5})
    start = new_command("welcome-user", {"user_id": 1, "amount": 5})
    echo = new_command("echo-node", {})
    assert _keyed_for_its_state(deposit, contracts).headers[PARTITION_KEY_HEADER] == "global/a1"
    keyed_start = _keyed_for_its_state(start, contracts)
    assert keyed_start.headers[PARTITION_KEY_HEADER] == f"global/{start.correlation_id}"
    assert _keyed_for_its_state(echo, contracts) is echo


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ('{"n": NaN}', "payload is not JSON: NaN is not a JSON value"),
        ('{"n": [1, -Infinity]}', "payload is not JSON: -Infinity is not a JSON value"),
        ('{"n": {"deep": 1e400}}', "payload is not JSON: payload.n.deep is past a double's range"),
        ('{"n": 1', "payload is not JSON: Expecting ',' delimiter"),
        ("[1]", "payload must be a JSON object, got list"),
    ],
)
def test_a_payload_on_the_command_line_is_strict_json(given: str, said: str) -> None:
    """Python's json reads NaN, Infinity and 1e400 (as inf): JSON has none of them."""
    with pytest.raises(ConfigError, match=re.escape(said)):
        parse_payload(given)
    assert parse_payload('{"n": 1e308, "s": "NaN"}') == {"n": 1e308, "s": "NaN"}


@pytest.mark.parametrize("command", ["emit", "state"])
def test_a_tenant_that_is_no_id_is_one_line_naming_the_option(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEX_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never reached
    given = ["order-totals", "{}"] if command == "emit" else ["order-totals", "c1"]
    assert app([command, *given, "--tenant", "Bad Tenant"], result_action="return_value") == 1
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1
    assert said[0].startswith("error: --tenant 'Bad Tenant': 'Bad Tenant' is not a valid slug")


def test_tail_refuses_a_bad_pattern_before_saying_it_follows_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEX_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never reached
    assert app(["tail", "[bad"], result_action="return_value") == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: topic pattern '[bad': segment '[bad' must be a slug, '*' or a final '#'"
    ]


def test_emit_outside_a_project_names_what_would_reach_a_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config/local.yaml here or above
    monkeypatch.delenv("ONEX_KAFKA__BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("ONEX_BUS__KIND", raising=False)
    assert app(["emit", "greet", "{}"], result_action="return_value") == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: no config file (config/local.yaml) and no ONEX_KAFKA__BOOTSTRAP_SERVERS: onex "
        "emit, tail and state talk to a runtime over Kafka; pass --config with the file that "
        "names your cluster, or set ONEX_KAFKA__BOOTSTRAP_SERVERS"
    ]
    missing = tmp_path / "nowhere.yaml"
    assert app(["emit", "greet", "{}", "--config", str(missing)], result_action="return_value") == 1
    assert capsys.readouterr().err.startswith(f"error: {missing}: no such config file")
    monkeypatch.setenv("ONEX_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9")  # nothing listens there
    assert app(["emit", "greet", "{}", "--timeout", "1"], result_action="return_value") == 1
    assert capsys.readouterr().err.startswith("error: no Kafka broker answers at 127.0.0.1:9")


def test_state_of_a_workflow_instance_needs_a_correlation_id_and_says_so_at_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEX_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never reached
    assert app(["state", "welcome-user", "u1"], result_action="return_value") == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: welcome-user is an orchestrator: its keys are workflow instances' correlation "
        "ids, UUIDs, and 'u1' is none (`onex emit welcome-user ... --correlation-id ID` starts "
        "one with an id of your choosing)"
    ]


def test_tail_shows_a_changelog_record_as_its_key_and_state() -> None:
    from onex_actors.cli._client import _line
    from onex_actors.devinfra._client import _is_state_topic, _state_record

    topic = "onex.app.local.global.state.node.cart.v1"
    assert _is_state_topic(topic)
    assert not _is_state_topic("onex.app.local.global.evt.node.cart.v1")
    assert not _is_state_topic("not-an-onex-topic")
    held = KeyState({"items": 1, "status": "open"}, 2, 17).to_bytes()
    assert _line(topic, 2, 5, _state_record(b"global/c1", held)) == (
        f'{topic} [2/5] state global/c1 {{"items":1,"status":"open"}} (reflects 2/17)'
    )
    assert _line(topic, 2, 6, _state_record(b"global/c1", None)) == (
        f"{topic} [2/6] state global/c1 deleted"
    )
    assert _line(topic, 2, 7, _state_record(b"global/c1", b"[1]")).startswith(
        f"{topic} [2/7] state global/c1 not a state record: "
    )


def test_arguments_left_over_name_the_command_and_its_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from onex_actors.cli import host_main, main

    with pytest.raises(SystemExit) as stopped:
        main(["call", "runtime-dev", "echo-node", "{}"])  # a runtime is no positional
    told = " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert stopped.value.code == 2
    assert "onex call: unexpected argument '{}': more than the command takes (a JSON" in told
    assert "Its usage: onex call --help" in told
    with pytest.raises(SystemExit):
        host_main(["runtime-dev"])
    told = " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert "omninode-runtime-host: unexpected argument 'runtime-dev': more than the" in told
    assert "JSON payload" not in told


def test_onex_host_is_the_host_command() -> None:
    from onex_actors.cli._host import run_host

    assert app["host"].default_command is run_host
