"""The seed's flow over a real broker, with real processes: host + `onex emit` / `onex tail`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.http_server import recording_server
from tests.integration.processes import (
    REPO,
    echo_tree,
    kafka_env,
    onex,
    shipped_tree,
    unique,
    write_contracts,
)

from onex_actors.app import kafka_client_config, load_config
from onex_actors.core import cmd_topic, evt_topic
from onex_actors.devinfra import command_topic_nodes
from onex_actors.testing import host_process


def test_emit_prints_the_result_and_tail_shows_it(tmp_path: Path, kafka_bootstrap: str) -> None:
    ghost = unique("ghost-node")  # a node the runtime does not know, on a topic it reads
    contracts = shipped_tree(tmp_path, "runtime-cli", ["echo-node"], ["local"], also=[ghost])
    env = kafka_env(kafka_bootstrap)
    config = str(REPO / "config" / "kafka.yaml")
    with host_process("runtime-cli", contracts, env):
        sent = onex("emit", "echo-node", '{"hello": "world"}', "--config", config, env=env)
        # the host dead-letters it at once; emit says why within its 5 s (it would
        # otherwise end with "no result within 5 s")
        unknown = onex("emit", ghost, "{}", "--timeout", "5", "--config", config, env=env)
        status = onex("status", "runtime-cli", "--config", config, env=env)
        nobody = unique("nobody-node")  # no topic, no contract: refused at once
        typo = onex("emit", nobody, "{}", "--timeout", "60", "--config", config, env=env)
        tailed = onex(
            "tail",
            "onex.app.local.global.evt.node.echo-node.*",
            "--from-beginning",
            "--max-records",
            "1",
            "--config",
            config,
            env=env,
        )
        flow = "0b6f0c1e-3f1a-4d8e-9a55-2f5c7a7d9e01"  # after the tail: not its one record
        chosen = onex(
            "emit", "echo-node", "{}", "--correlation-id", flow, "--config", config, env=env
        )
    assert sent.returncode == 0, sent.stderr
    result = json.loads(sent.stdout)
    assert result["payload"] == {"hello": "world"}
    assert (result["type"], result["status"], result["node_id"]) == ("evt", "ok", "echo-node")
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout)["correlation_id"] == flow  # the flow the caller chose
    assert unknown.returncode == 1
    assert f"error: {ghost}: the command was dead-lettered (unknown_node: " in unknown.stderr
    assert status.returncode == 0, status.stderr
    status_lines = status.stdout.splitlines()
    assert status_lines[0] == "runtime runtime-cli (healthy, from its health op)"
    assert status_lines[2].split()[:3] == ["echo-node", "running", "0"]
    assert typo.returncode == 1, typo.stderr
    assert typo.stderr.startswith(
        f"error: no runtime hosts '{nobody}': its command topic {cmd_topic(nobody)} does not "
        f"exist on {kafka_bootstrap}"
    )
    assert "nothing was sent" in typo.stderr
    assert tailed.returncode == 0, tailed.stderr
    assert tailed.stderr.startswith(
        "following onex.app.local.global.evt.node.echo-node.* on "
    )  # said at once, before any record arrives
    assert "evt ok echo-node" in tailed.stdout
    assert '{"hello":"world"}' in tailed.stdout


def test_emit_refuses_a_misspelt_node_at_once_naming_the_close_one(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    node, runtime, contracts = echo_tree(tmp_path / "tree", "spelt")
    env = {**kafka_env(kafka_bootstrap), "ONEX_CONTRACTS_DIR": str(contracts)}
    config = str(REPO / "config" / "kafka.yaml")
    with host_process(runtime, contracts, env):
        misspelt = node.replace("spelt", "spelr")
        # bounded well under its --timeout: the old client waited all of it
        typo = onex(
            "emit", misspelt, "{}", "--timeout", "60", "--config", config, env=env, timeout_s=30
        )
    assert typo.returncode == 1
    (line,) = typo.stderr.strip().splitlines()
    assert f"Did you mean '{node}'? Hosted nodes: {node}, " in line
    assert misspelt not in command_topic_nodes(kafka_client(kafka_bootstrap))


def test_status_of_a_runtime_that_never_ran_says_so_at_once(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    _, runtime, contracts = echo_tree(tmp_path / "tree", "never")
    env = {**kafka_env(kafka_bootstrap), "ONEX_CONTRACTS_DIR": str(contracts)}
    config = str(REPO / "config" / "kafka.yaml")
    # bounded well under its --timeout: it used to wait all of it
    never = onex("status", runtime, "--timeout", "60", "--config", config, env=env, timeout_s=30)
    assert never.returncode == 1
    assert never.stderr.strip() == (
        f"error: runtime {runtime!r} has never run on this cluster (it has no command topic "
        f"{cmd_topic(runtime)})"
    )
    assert runtime not in command_topic_nodes(kafka_client(kafka_bootstrap))  # none made


def test_emit_to_a_node_of_the_tree_no_runtime_runs_yet_sends_it_to_wait(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    node, runtime, contracts = echo_tree(tmp_path / "tree", "later")
    env = {**kafka_env(kafka_bootstrap), "ONEX_CONTRACTS_DIR": str(contracts)}
    config = str(REPO / "config" / "kafka.yaml")
    sent = onex("emit", node, '{"n": 1}', "--no-wait", "--config", config, env=env)
    assert sent.returncode == 0, sent.stderr
    assert sent.stderr.startswith(
        f"note: {cmd_topic(node)} did not exist, so no running runtime hosts '{node}'"
    )
    assert f"; {runtime} in {contracts} hosts it (python3 scripts/dev.py run-host {runtime})" in (
        sent.stderr
    )
    with host_process(runtime, contracts, env):  # the runtime starts later: it answers
        tailed = onex(
            "tail",
            evt_topic(node),
            "--from-beginning",
            "--max-records",
            "1",
            "--config",
            config,
            env=env,
        )
    assert tailed.returncode == 0, tailed.stderr
    assert '{"n":1}' in tailed.stdout


def kafka_client(bootstrap: str) -> dict[str, object]:
    settings = load_config(overrides={"kafka.bootstrap_servers": bootstrap})
    return kafka_client_config(settings.kafka)


def test_emit_and_tail_say_at_once_that_no_broker_answers() -> None:
    env = {**os.environ, "ONEX_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    config = str(REPO / "config" / "kafka.yaml")
    for args in (["emit", "echo-node", "{}"], ["tail", "onex.app.local.global.evt.node.#"]):
        # bounded well under the clients' own 30 s: a slow answer fails the test
        result = onex(*args, "--config", config, env=env, timeout_s=20)
        assert result.returncode == 1
        assert result.stderr.startswith("error: no Kafka broker answers at 127.0.0.1:1")
        assert "onex broker up" in result.stderr


def test_emit_refuses_a_config_file_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = onex("emit", "echo-node", "{}", "--config", str(missing), env=dict(os.environ))
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: {missing}: no such config file")


def test_emit_refuses_a_payload_that_is_not_an_object(kafka_bootstrap: str) -> None:
    env = kafka_env(kafka_bootstrap)
    bad = onex(
        "emit", "echo-node", "[1, 2]", "--config", str(REPO / "config" / "kafka.yaml"), env=env
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: payload must be a JSON object, got list"
    no_uuid = onex("emit", "echo-node", "{}", "--correlation-id", "order-7", env=env)
    assert no_uuid.returncode == 1
    assert no_uuid.stderr.startswith("error: --correlation-id 'order-7' is not a UUID (e.g. ")


def test_http_node_over_kafka_through_the_cli(tmp_path: Path, kafka_bootstrap: str) -> None:
    node, runtime = unique("proxy-cli"), unique("runtime-proxy-cli")
    with recording_server() as server:
        node_yaml = (
            f"kind: effect\nnode_id: {node}\nversion: '0.1.0'\neffect_type: http\n"
            f"http: {{url_template: '{server.base_url}/{{path}}', method: POST, body: payload}}\n"
        )
        contracts = write_contracts(tmp_path, runtime, node_yaml, node)
        env = kafka_env(kafka_bootstrap, ONEX_HTTP__ALLOWLIST=f"['127.0.0.1:{server.port}']")
        config = str(REPO / "config" / "kafka.yaml")
        with host_process(runtime, contracts, env):
            sent = onex("emit", node, '{"path": "orders", "qty": 2}', "--config", config, env=env)
    assert sent.returncode == 0, sent.stderr
    result = json.loads(sent.stdout)
    assert (result["type"], result["status"], result["node_id"]) == ("evt", "ok", node)
    assert result["payload"]["status"] == 200
    echoed = result["payload"]["body"]
    assert (echoed["method"], echoed["path"]) == ("POST", "/orders")
    assert json.loads(echoed["body"]) == {"path": "orders", "qty": 2}
    assert [(r.method, r.path) for r in server.seen] == [("POST", "/orders")]


def test_state_of_a_node_neither_the_tree_nor_the_cluster_has_guesses_the_name(
    kafka_bootstrap: str,
) -> None:
    config = str(REPO / "config" / "kafka.yaml")
    result = onex("state", "acount", "a1", "--config", config, env=kafka_env(kafka_bootstrap))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: state topic onex.app.local.global.state.node.acount.v1 does not exist: no "
        f"runtime hosted the reducer yet; {REPO / 'contracts'} has no node 'acount' either "
        "(its reducers and orchestrators: account, digest-doc, order-totals, welcome-user); "
        "did you mean 'account'?"
    )
