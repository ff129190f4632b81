from __future__ import annotations

import logging

import pytest

from onex_actors.app._redaction import MASK, redact, register_dsn, register_secret


def test_registered_secrets_are_masked_in_messages_args_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    register_secret("sasl-secret-123")
    register_dsn("postgresql://app:dsn-pass-456@db.internal:5432/app")
    logger = logging.getLogger("kafka.some.library")
    with caplog.at_level(logging.DEBUG):
        logger.debug("config: %s", {"sasl_plain_password": "sasl-secret-123"})
        logger.info("connecting to postgresql://app:dsn-pass-456@db.internal:5432/app")
        try:
            raise ValueError("auth failed for dsn-pass-456")
        except ValueError:
            logger.exception("failed")
    text = caplog.text
    assert "sasl-secret-123" not in text
    assert "dsn-pass-456" not in text
    assert f"'sasl_plain_password': '{MASK}'" in text
    assert f"connecting to {MASK}" in text
    assert f"auth failed for {MASK}" in text


def test_short_values_are_not_masked() -> None:
    register_secret("ab")
    assert redact("tab stop") == "tab stop"
