"""The seed's Phase 2 path: `onex emit` → Kafka → host → DbHandler → PostgreSQL → evt."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.integration.processes import REPO, kafka_env, onex

from onex_actors.testing import HOST_COMMAND, host_process

RUNTIME = """\
kind: runtime_host
node_id: runtime-pg
version: "0.1.0"
subscriptions:
  cmd_topics:
    - onex.app.local.global.cmd.node.query-user.v1
    - onex.app.local.global.cmd.node.runtime-pg.v1
handlers: {families: [db]}
host_selector: {node_ids: [query-user]}
"""


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    (tmp_path / "runtime").mkdir()
    (tmp_path / "runtime" / "runtime-pg.yaml").write_text(RUNTIME)
    (tmp_path / "nodes").mkdir()
    shutil.copy(REPO / "contracts" / "nodes" / "query-user.yaml", tmp_path / "nodes")
    return tmp_path


def test_query_user_end_to_end(contracts: Path, kafka_bootstrap: str, postgres_dsn: str) -> None:
    env = kafka_env(kafka_bootstrap, DATABASE_URL=postgres_dsn)
    config = str(REPO / "config" / "kafka.yaml")
    with host_process("runtime-pg", contracts, env):
        found = onex("emit", "query-user", '{"user_id": 2}', "--config", config, env=env)
        missing = onex("emit", "query-user", '{"user_id": 999}', "--config", config, env=env)
    assert found.returncode == 0, found.stderr
    event = json.loads(found.stdout)
    assert event["node_id"] == "query-user"
    assert [(r["id"], r["name"]) for r in event["payload"]["rows"]] == [(2, "Alan Turing")]
    assert json.loads(missing.stdout)["payload"]["rows"] == []


@pytest.mark.parametrize(
    ("db_section", "expected"),
    [
        (
            "  sql: 'select * from users where id = :user_id and name = :name'\n"
            "  params: {user_id: '$.payload.user_id'}\n",
            "uses :name with no entry in db.params",
        ),
        (
            "  sql: 'select * from users where id = :user_id'\n"
            "  params: {user_id: '$.payload.user_id', extra: '$.payload.extra'}\n",
            "db.params maps extra, which db.sql never uses",
        ),
        (
            "  connection: reporting\n  sql: 'select 1'\n",
            "uses db.connection 'reporting', which is not in the config's databases",
        ),
    ],
)
def test_db_contract_errors_stop_the_host_with_one_line(
    contracts: Path, postgres_dsn: str, db_section: str, expected: str
) -> None:
    node = contracts / "nodes" / "query-user.yaml"
    node.write_text(
        "kind: effect\nnode_id: query-user\nversion: '0.1.0'\neffect_type: db\ndb:\n" + db_section
    )
    result = subprocess.run(
        [
            *HOST_COMMAND,
            "--runtime-node-id",
            "runtime-pg",
            "--contracts-dir",
            str(contracts),
            "--config",
            str(REPO / "config" / "inprocess.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            **kafka_env("127.0.0.1:1"),
            "ONEX_BUS__KIND": "inprocess",
            "DATABASE_URL": postgres_dsn,
        },
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert expected in line
