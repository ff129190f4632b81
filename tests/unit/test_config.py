from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import httpx2
import pytest
from pydantic import SecretStr

from onex_actors.app import (
    HostConfig,
    KafkaSettings,
    from_project_root,
    kafka_client_config,
    librdkafka_config,
    load_config,
    project_root,
)
from onex_actors.core import ConfigError
from onex_actors.devinfra import LocalTansu, local_broker, resolve_auto_broker
from onex_actors.handlers import HostAllowlist

REPO = Path(__file__).resolve().parents[2]


def test_shipped_configs_load() -> None:
    local = load_config(REPO / "config" / "local.yaml")
    assert (local.bus.kind, local.kafka.start_local_broker) == ("kafka", True)
    assert local.http.allowlist == ("127.0.0.1:8080", "localhost:8080")
    kafka = load_config(REPO / "config" / "kafka.yaml")
    assert (kafka.bus.kind, kafka.kafka.start_local_broker) == ("kafka", False)
    hybrid = load_config(REPO / "config" / "hybrid.yaml")
    assert hybrid.kafka.security_protocol == "SASL_SSL"
    assert hybrid.kafka.sasl_password is None  # secrets come from the environment
    assert load_config(REPO / "config" / "inprocess.yaml").bus.kind == "inprocess"
    assert local.llm.endpoints["default"].base_url is None  # a local server
    assert local.vector.stores["default"].path == REPO / ".cache" / "onex" / "qdrant"
    assert hybrid.llm.endpoints["default"].base_url == "https://llm.internal/v1"
    assert hybrid.llm.endpoints["default"].api_key is None  # from the environment
    assert hybrid.vector.stores["default"].url == "https://qdrant.internal:6333"


def test_model_endpoint_keys_come_from_the_environment_and_urls_are_checked(
    tmp_path: Path,
) -> None:
    config = load_config(
        None, environ={"ONEX_LLM__ENDPOINTS__DEFAULT__API_KEY": "sk-from-the-environment"}
    )
    key = config.llm.endpoints["default"].api_key
    assert key is not None
    assert key.get_secret_value() == "sk-from-the-environment"
    assert "sk-from" not in repr(config)
    path = tmp_path / "c.yaml"
    path.write_text("embedding: {endpoints: {remote: {base_url: 'ftp://x'}}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "key 'embedding.endpoints.remote.base_url'" in message
    assert "must start with http:// or https://" in message


def test_environment_overrides_file_and_flags_override_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("http: {timeout_s: 3}\nkafka: {bootstrap_servers: 'file:9092'}\n")
    config = load_config(
        path,
        environ={
            "ONEX_KAFKA__BOOTSTRAP_SERVERS": "env:9092",
            "ONEX_HTTP__TIMEOUT_S": "7",
            "ONEX_KAFKA_BOOTSTRAP": "not-config:1",
            "HOME": "/root",
        },
        overrides={"http.timeout_s": 9},
    )
    assert config.kafka.bootstrap_servers == "env:9092"
    assert config.http.timeout_s == 9


def test_without_a_file_a_cluster_named_by_the_environment_means_a_kafka_bus(
    tmp_path: Path,
) -> None:
    cluster = {"ONEX_KAFKA__BOOTSTRAP_SERVERS": "remote:9092"}
    assert load_config(environ={}).bus.kind == "inprocess"
    assert load_config(environ=cluster).bus.kind == "kafka"
    kept = load_config(environ={**cluster, "ONEX_BUS__KIND": "inprocess"})
    assert kept.bus.kind == "inprocess"
    path = tmp_path / "c.yaml"
    path.write_text("bus: {kind: inprocess}\n")
    assert load_config(path, environ=cluster).bus.kind == "inprocess"  # the file says


def test_errors_name_the_source_and_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("bus: {kind: carrier-pigeon}\nhttp: {timeot_s: 1}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = str(info.value).splitlines()
    assert any(line.startswith(f"{path}: key 'bus.kind'") for line in lines)
    assert f"{path}: key 'http.timeot_s': unknown key; check its spelling" in lines


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("bus: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_secrets_are_not_shown() -> None:
    config = load_config(environ={"ONEX_KAFKA__SASL_PASSWORD": "hunter2"})
    assert "hunter2" not in repr(config)
    assert isinstance(config, HostConfig)


def test_group_session_timeout_comes_from_the_environment_and_has_a_floor() -> None:
    config = load_config(environ={"ONEX_KAFKA__SESSION_TIMEOUT_MS": "2000"})
    assert config.kafka.session_timeout_ms == 2000
    assert load_config().kafka.session_timeout_ms == 10_000
    with pytest.raises(ConfigError, match=r"kafka\.session_timeout_ms"):
        load_config(environ={"ONEX_KAFKA__SESSION_TIMEOUT_MS": "500"})


@pytest.mark.parametrize("entry", ["127.0.0.1", "localhost:", "[::1]", ":8080", "host:70000"])
def test_http_allowlist_entries_must_carry_a_valid_port(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"http: {{allowlist: ['{entry}']}}\n")
    with pytest.raises(ConfigError, match=r"key 'http\.allowlist'") as info:
        load_config(path)
    assert repr(entry) in str(info.value)


def test_http_allowlist_admits_exactly_its_host_and_port() -> None:
    allow = HostAllowlist.parse(["127.0.0.1:8080", "[::1]:9000", "API.internal:443"])
    assert allow.allows(httpx2.URL("http://127.0.0.1:8080/x"))
    assert not allow.allows(httpx2.URL("http://127.0.0.1:9092/x"))
    assert allow.allows(httpx2.URL("http://[::1]:9000/"))
    assert allow.allows(httpx2.URL("https://api.internal/v1"))
    assert not allow.allows(httpx2.URL("http://api.internal/v1"))


SECURITY_CASES = [
    pytest.param({}, {}, {}, id="plaintext"),
    pytest.param(
        {"security_protocol": "SSL", "ssl_cafile": "/etc/ca.pem"},
        {"ssl_cafile": "/etc/ca.pem"},
        {"ssl.ca.location": "/etc/ca.pem"},
        id="ssl-server-auth",
    ),
    pytest.param(
        {
            "security_protocol": "SSL",
            "ssl_cafile": "/etc/ca.pem",
            "ssl_certfile": "/etc/client.pem",
            "ssl_keyfile": "/etc/client.key",
            "ssl_key_password": SecretStr("key-pass-1"),
        },
        {
            "ssl_cafile": "/etc/ca.pem",
            "ssl_certfile": "/etc/client.pem",
            "ssl_keyfile": "/etc/client.key",
            "ssl_password": "key-pass-1",
        },
        {
            "ssl.ca.location": "/etc/ca.pem",
            "ssl.certificate.location": "/etc/client.pem",
            "ssl.key.location": "/etc/client.key",
            "ssl.key.password": "key-pass-1",
        },
        id="ssl-client-certificate",
    ),
    *(
        pytest.param(
            {
                "security_protocol": protocol,
                "sasl_mechanism": mechanism,
                "sasl_username": "svc",
                "sasl_password": SecretStr("s3cret-pw"),
                **({"ssl_cafile": "/etc/ca.pem"} if protocol == "SASL_SSL" else {}),
            },
            {
                "sasl_mechanism": mechanism,
                "sasl_plain_username": "svc",
                "sasl_plain_password": "s3cret-pw",
                **({"ssl_cafile": "/etc/ca.pem"} if protocol == "SASL_SSL" else {}),
            },
            {
                "sasl.mechanisms": mechanism,
                "sasl.username": "svc",
                "sasl.password": "s3cret-pw",
                **({"ssl.ca.location": "/etc/ca.pem"} if protocol == "SASL_SSL" else {}),
            },
            id=f"{protocol}-{mechanism}",
        )
        for protocol in ("SASL_PLAINTEXT", "SASL_SSL")
        for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    ),
]


@pytest.mark.parametrize(("ours", "kafka_python", "librdkafka"), SECURITY_CASES)
def test_each_security_setting_is_mapped_for_both_clients(
    ours: dict[str, object], kafka_python: dict[str, object], librdkafka: dict[str, object]
) -> None:
    settings = KafkaSettings.model_validate({"bootstrap_servers": "broker.example:9093", **ours})
    protocol = settings.security_protocol
    assert kafka_client_config(settings) == {
        "bootstrap_servers": "broker.example:9093",
        "security_protocol": protocol,
        **kafka_python,
    }
    assert librdkafka_config(settings) == {
        "bootstrap.servers": "broker.example:9093",
        "security.protocol": protocol,
        **librdkafka,
    }


@pytest.mark.parametrize(
    ("ours", "complaint"),
    [
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            r"SASL_SSL but kafka\.sasl_password is not set.*ONEX_KAFKA__SASL_PASSWORD",
        ),
        (
            {"sasl_mechanism": "PLAIN", "sasl_username": "u"},
            r"kafka\.sasl_\* is set but kafka\.security_protocol is PLAINTEXT",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "ssl_cafile": "/ca.pem"},
            r"kafka\.sasl_mechanism, kafka\.sasl_username, kafka\.sasl_password is not set",
        ),
        (
            {"ssl_cafile": "/ca.pem"},
            r"kafka\.ssl_\* is set but kafka\.security_protocol is PLAINTEXT",
        ),
        (
            {"security_protocol": "SSL", "ssl_certfile": "/c.pem"},
            r"needs both kafka\.ssl_certfile and kafka\.ssl_keyfile",
        ),
        (
            {"security_protocol": "SSL", "ssl_key_password": SecretStr("x")},
            r"ssl_key_password is set but kafka\.ssl_keyfile is not",
        ),
    ],
)
def test_security_settings_that_cannot_work_are_refused_for_both_clients(
    ours: dict[str, object], complaint: str
) -> None:
    settings = KafkaSettings.model_validate(ours)
    for mapping in (kafka_client_config, librdkafka_config):
        with pytest.raises(ConfigError, match=complaint):
            mapping(settings)


def test_an_unknown_sasl_mechanism_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"kafka\.sasl_mechanism"):
        load_config(environ={"ONEX_KAFKA__SASL_MECHANISM": "GSSAPI"})


def test_security_secrets_never_reach_a_log_record(caplog: pytest.LogCaptureFixture) -> None:
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="svc",
        sasl_password=SecretStr("sasl-secret-77"),
        ssl_cafile="/ca.pem",
        ssl_certfile="/c.pem",
        ssl_keyfile="/c.key",
        ssl_key_password=SecretStr("key-secret-88"),
    )
    assert "sasl-secret-77" not in repr(settings)
    configs = [kafka_client_config(settings), librdkafka_config(settings)]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("kafka.conn").debug("client config: %s", configs)
    assert caplog.records
    text = caplog.records[0].getMessage()
    assert "sasl-secret-77" not in text
    assert "key-secret-88" not in text
    assert "***" in text


def test_the_kafka_client_is_chosen_by_config() -> None:
    assert load_config().kafka.client == "confluent"  # installed here, so the default
    config = load_config(environ={"ONEX_KAFKA__CLIENT": "kafka-python"})
    assert config.kafka.client == "kafka-python"
    with pytest.raises(ConfigError, match=r"kafka\.client"):
        load_config(environ={"ONEX_KAFKA__CLIENT": "rdkafka"})


def test_without_confluent_kafka_the_default_client_is_kafka_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "confluent_kafka" else real(name, *args),
    )
    assert KafkaSettings().client == "kafka-python"


def test_a_bad_value_is_shown_in_its_error_but_a_secret_is_not() -> None:
    with pytest.raises(ConfigError, match=r"key 'http\.timeout_s': .* \(got 'abc'\)"):
        load_config(environ={"ONEX_HTTP__TIMEOUT_S": "abc"})
    with pytest.raises(ConfigError) as raised:
        load_config(overrides={"kafka.ssl_key_password": 987654})
    assert "(got ***)" in str(raised.value)
    assert "987654" not in str(raised.value)


def test_relative_paths_resolve_from_the_project_root_wherever_a_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "contracts").mkdir(parents=True)
    (project / "config").mkdir()
    config_file = project / "config" / "local.yaml"
    config_file.write_text("contracts_dir: contracts\n")
    deep = project / "docs" / "deeper"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert project_root() == project
    assert from_project_root(Path("config/local.yaml")) == config_file
    config = load_config(config_file)
    assert config.contracts_dir == project / "contracts"
    assert config.cache_dir == project / ".cache"
    assert config.databases["default"].embedded_dir == project / ".cache/onex/postgres"
    assert load_config().contracts_dir == project / "contracts"  # no file: from the cwd up


def test_outside_any_project_paths_stay_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert project_root() is None
    assert from_project_root(Path("contracts")) == Path("contracts")
    assert load_config().contracts_dir == Path("contracts")


def test_without_java_the_local_broker_is_tansu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java here
    with caplog.at_level(logging.INFO, logger="onex_actors.devinfra"):
        assert resolve_auto_broker() == "tansu"
        broker = local_broker("auto", 19092, cache_dir=tmp_path)
    assert isinstance(broker, LocalTansu)
    assert broker.home == tmp_path / "tansu"
    assert "no Java on the PATH: the local broker is tansu" in caplog.text
    java = tmp_path / "java"
    java.write_text("#!/bin/sh\n")
    java.chmod(0o755)
    assert resolve_auto_broker() == "kafka"


def test_the_listener_address_is_host_and_port() -> None:
    assert load_config().http.listen is None  # off unless asked for
    assert load_config(overrides={"http.listen": "127.0.0.1:9100"}).http.listen == "127.0.0.1:9100"
    with pytest.raises(ConfigError, match=r"key 'http.listen': .*expected host:port"):
        load_config(environ={"ONEX_HTTP__LISTEN": "127.0.0.1"})
