"""One Kafka security config, mapped for each client (kafka-python and librdkafka).

``KafkaSettings`` says how to reach the brokers once: the protocol (PLAINTEXT, SSL,
SASL_PLAINTEXT, SASL_SSL), the SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and
credentials, the CA file and a client certificate. Each client spells those settings
its own way; these functions are the only place that knows both spellings. Secrets are
unwrapped here and registered for redaction, so no log record shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from onex_actors.core import ConfigError

from ._config import KafkaSettings
from ._redaction import register_secret

__all__ = ["check_kafka_security", "kafka_client_config", "librdkafka_config"]


def check_kafka_security(settings: KafkaSettings) -> None:
    """Raise ``ConfigError`` when the security settings cannot work together."""
    protocol = settings.security_protocol
    sasl = protocol.startswith("SASL_")
    ssl = protocol.endswith("SSL")
    if sasl:
        missing = [
            f"kafka.{name}"
            for name, value in (
                ("sasl_mechanism", settings.sasl_mechanism),
                ("sasl_username", settings.sasl_username),
                ("sasl_password", settings.sasl_password),
            )
            if value is None
        ]
        if missing:
            raise ConfigError(
                f"kafka.security_protocol is {protocol} but {', '.join(missing)} "
                "is not set; set it in the config file or the environment "
                "(ONEX_KAFKA__SASL_PASSWORD and the like)"
            )
    elif settings.sasl_mechanism or settings.sasl_username or settings.sasl_password:
        raise ConfigError(
            f"kafka.sasl_* is set but kafka.security_protocol is {protocol}, which does "
            "not use SASL; use SASL_PLAINTEXT or SASL_SSL, or remove the sasl_* keys"
        )
    tls = (settings.ssl_cafile, settings.ssl_certfile, settings.ssl_keyfile)
    if not ssl and any(tls):
        raise ConfigError(
            f"kafka.ssl_* is set but kafka.security_protocol is {protocol}, which does "
            "not use TLS; use SSL or SASL_SSL, or remove the ssl_* keys"
        )
    if (settings.ssl_certfile is None) != (settings.ssl_keyfile is None):
        raise ConfigError(
            "a client certificate needs both kafka.ssl_certfile and kafka.ssl_keyfile"
        )
    if settings.ssl_key_password is not None and settings.ssl_keyfile is None:
        raise ConfigError("kafka.ssl_key_password is set but kafka.ssl_keyfile is not")


_KAFKA_PYTHON = {
    "bootstrap_servers": "bootstrap_servers",
    "security_protocol": "security_protocol",
    "sasl_mechanism": "sasl_mechanism",
    "sasl_username": "sasl_plain_username",
    "sasl_password": "sasl_plain_password",
    "ssl_cafile": "ssl_cafile",
    "ssl_certfile": "ssl_certfile",
    "ssl_keyfile": "ssl_keyfile",
    "ssl_key_password": "ssl_password",
}
"""Our key → kafka-python's keyword."""

_LIBRDKAFKA = {
    "bootstrap_servers": "bootstrap.servers",
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanisms",
    "sasl_username": "sasl.username",
    "sasl_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_key_password": "ssl.key.password",
}
"""Our key → librdkafka's property."""


def kafka_client_config(settings: KafkaSettings) -> dict[str, Any]:
    """kafka-python client settings from our config (secrets unwrapped only here)."""
    return _mapped(settings, _KAFKA_PYTHON)


def librdkafka_config(settings: KafkaSettings) -> dict[str, Any]:
    """confluent-kafka (librdkafka) client settings from our config (secrets unwrapped here)."""
    return _mapped(settings, _LIBRDKAFKA)


def _mapped(settings: KafkaSettings, names: Mapping[str, str]) -> dict[str, Any]:
    """Each setting that is set, under the client's name for it; secrets unwrapped."""
    check_kafka_security(settings)
    client: dict[str, Any] = {}
    for ours, theirs in names.items():
        value = getattr(settings, ours)
        if value is None:
            continue
        client[theirs] = _secret(value) if isinstance(value, SecretStr) else value
    return client


def _secret(value: SecretStr) -> str:
    secret = value.get_secret_value()
    register_secret(secret)
    return secret
