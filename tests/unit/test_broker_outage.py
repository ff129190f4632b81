"""An outage of the brokers is said once, again once a minute, and once when it ends."""

from __future__ import annotations

import logging

import pytest

from onex_actors.bridges._outage import BrokerOutage, route_client_logs

pytestmark = pytest.mark.unit

REFUSED = "Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after 0ms in state CONNECT)"


class Broker:
    """A fake clock and bootstrap probe."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.up = True
        self.probes = 0

    def probe(self) -> bool:
        self.probes += 1
        return self.up

    def outage(self) -> BrokerOutage:
        return BrokerOutage(
            "127.0.0.1:9092", probe=self.probe, clock=lambda: self.now, watch_in_thread=False
        )


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "onex_actors.kafka"]


def test_a_line_that_is_no_connection_failure_is_left_alone() -> None:
    broker = Broker()
    assert broker.outage().client_says("Heartbeat session expired") is False
    assert broker.probes == 0


def test_a_failure_while_a_server_accepts_is_no_outage(caplog: pytest.LogCaptureFixture) -> None:
    broker = Broker()
    outage = broker.outage()
    assert outage.client_says(REFUSED) is False  # one broker of several away: say it as is
    assert outage.client_says(REFUSED) is False
    assert broker.probes == 1  # at most one probe every probe_every_s
    assert outage.describe() is None
    assert _said(caplog) == []


def test_an_outage_is_said_once_then_once_a_minute_then_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    broker = Broker()
    outage = broker.outage()
    broker.up = False
    assert outage.client_says(REFUSED) is True
    for _ in range(50):  # the client's lines go on: each is part of the outage
        assert outage.client_says(REFUSED) is True
    assert outage.client_says("Heartbeat failed for group g: coordinator not valid") is True
    (first,) = _said(caplog)
    assert first.startswith("Kafka at 127.0.0.1:9092 unreachable: no bootstrap server answers")
    assert "Connection refused" in first
    broker.now += 30
    outage.check()
    assert outage.describe() is not None
    assert outage.describe().endswith("(30 s)")  # type: ignore[union-attr]
    broker.now += 31
    outage.check()
    outage.check()
    assert _said(caplog)[1:] == [
        "Kafka at 127.0.0.1:9092 still unreachable after 1 min 1 s; still trying"
    ]
    broker.now += 29
    broker.up = True
    outage.check()
    assert _said(caplog)[2:] == [
        "Kafka at 127.0.0.1:9092 answers again, after 1 min 30 s without a broker"
    ]
    assert outage.describe() is None
    assert outage.outages == 1


def test_a_client_line_of_an_outage_goes_to_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    broker = Broker()
    outage = broker.outage()
    client = logging.getLogger("test_broker_outage_client")
    route_client_logs(outage, [client.name])
    client.error("an unrelated error")  # passes as it is
    client.error(REFUSED)  # a server accepts: no outage, passes
    broker.up, broker.now = False, broker.now + 1  # probed at most every probe_every_s
    client.error(REFUSED)  # starts the outage: the line itself goes to DEBUG
    client.warning(REFUSED)
    outage.close()
    client.error(REFUSED)  # a closed watch hears nothing: the line passes as it is
    seen = [(r.name, r.levelname) for r in caplog.records]
    assert seen == [
        (client.name, "ERROR"),
        (client.name, "ERROR"),
        ("onex_actors.kafka", "WARNING"),
        (client.name, "ERROR"),
    ]


def test_a_request_the_closing_client_cancelled_is_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    outage = Broker().outage()
    client = logging.getLogger("test_broker_outage_closing")
    route_client_logs(outage, [client.name])
    client.error("Metadata refresh: failed %s", "Cancelled")
    client.error("Metadata refresh: failed %s", "KafkaConnectionError")
    outage.close()
    assert [r.getMessage() for r in caplog.records] == [
        "Metadata refresh: failed KafkaConnectionError"
    ]


def test_the_empty_metadata_of_a_broker_shutting_down_is_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    broker = Broker()
    outage = broker.outage()
    client = logging.getLogger("test_broker_outage_shutting_down")
    route_client_logs(outage, [client.name])
    client.warning("No broker metadata found in MetadataResponse -- ignoring.")
    client.warning(
        "Task <kafka.net.selector.Task object at 0x7f48> ran for 0.142s (>0.100s threshold)."
        " It is blocking the event loop -- likely a tight sync loop inside a coroutine. Other"
        " pollers will time out."
    )
    client.warning("Heartbeat session expired")
    outage.close()
    assert [r.getMessage() for r in caplog.records] == ["Heartbeat session expired"]
    assert broker.probes == 0


def test_the_clients_reconnects_just_after_an_outage_are_part_of_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """kafka-python said "No node available" 1.7 s after an outage's end, in a CI run."""
    caplog.set_level(logging.INFO)
    broker = Broker()
    outage = broker.outage()
    client = logging.getLogger("test_broker_outage_reconnecting")
    route_client_logs(outage, [client.name])
    broker.up = False
    client.error(REFUSED)  # starts the outage
    broker.now += 10
    broker.up = True
    outage.check()  # ends it
    broker.now += 1.7
    client.warning("No node available for metadata refresh - backoff/retry")
    client.warning("No node available for metadata refresh - backoff/retry")  # probe cached
    broker.now += outage.recovering_s
    client.warning(REFUSED)  # long after: a server answers, so one broker of several is away
    broker.now += 1
    broker.up = False
    client.warning(REFUSED)  # and a new outage is one again
    outage.close()
    seen = [(r.name, r.levelname, r.getMessage()[:40]) for r in caplog.records]
    assert seen == [
        ("onex_actors.kafka", "WARNING", "Kafka at 127.0.0.1:9092 unreachable: no "),
        ("onex_actors.kafka", "WARNING", "Kafka at 127.0.0.1:9092 answers again, a"),
        (client.name, "WARNING", REFUSED[:40]),
        ("onex_actors.kafka", "WARNING", "Kafka at 127.0.0.1:9092 unreachable: no "),
    ]
    assert outage.outages == 2
