"""Contract models: what a node or a runtime host is, as read from YAML (SPEC §5).

Every model is frozen and rejects unknown keys; :func:`parse_contract` turns a YAML
document into one of them with errors that name the file and key path.
"""

from __future__ import annotations

import enum
import string
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from ._ids import NodeId, NodeKind, RuntimeId, SemVer, TenantId, check_slug, contract_id
from ._jsonpath import JsonPath
from ._model_effects import EmbeddingEffect, LlmEffect, VectorEffect
from ._payload_schema import PayloadSchema
from ._policies import RestartPolicy, RetryPolicy
from ._sql import CompiledSql, compile_named_sql
from ._topics import TopicPattern

__all__ = [
    "BaseNodeContract",
    "DbEffect",
    "EffectContract",
    "EffectFamily",
    "HandlerFamilies",
    "HostSelector",
    "HttpEffect",
    "LocalEffect",
    "PureNodeContract",
    "RuntimeHostContract",
    "Subscriptions",
    "ThenCommand",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EffectFamily(enum.StrEnum):
    """Handler families an effect node can use; a runtime enables some of them."""

    LOCAL = "local"
    HTTP = "http"
    DB = "db"
    LLM = "llm"
    EMBEDDING = "embedding"
    VECTOR = "vector"


def keyed_without_fan_out(fan_out: bool, kind: str) -> bool:
    """Refuse ``fan_out`` on a node keeping keyed state (``kind``: "a reducer", say)."""
    if fan_out:
        raise ValueError(
            f"{kind} cannot be fan_out: its state lives in one state topic per node, "
            "which every runtime answering every command would write (each key's state "
            "twice, a lagging runtime's older state last; intents, steps and timers sent "
            "twice); host it in one runtime, or give each runtime a node of its own "
            "(another node_id)"
        )
    return fan_out


class BaseNodeContract(_Model):
    """Fields every node contract has, with the runtime settings it may declare."""

    kind: NodeKind
    node_id: NodeId
    version: SemVer
    tenant_scope: Literal["global"] | tuple[TenantId, ...] = "global"
    """``global`` accepts every tenant; a list accepts only those tenants."""
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    inbox_size: int = Field(default=1024, ge=1, le=1_000_000)
    """Envelopes waiting for the node before the partitions feeding it are paused (they
    resume at half); nothing is dropped."""
    concurrency: int = Field(default=64, ge=1, le=10_000)
    """Most envelopes the node handles at once (within what ``ordering`` allows)."""
    ordering: Literal["key", "partition", "none"] = "key"
    """What must not overlap: ``key`` (envelopes with the same record key run one after
    another in the order they were read, different keys in parallel; a record without a
    key is ordered with nothing), ``partition`` (one envelope of a partition at a time)
    or ``none``. Offsets are committed only past what is done, whatever the order."""
    timeout_s: float = Field(default=30.0, gt=0)
    retry: RetryPolicy = RetryPolicy()
    restart: RestartPolicy = RestartPolicy()
    idempotency_window_s: float = Field(default=600.0, ge=0)
    """How long an answered ``envelope_id`` is remembered, so a redelivery is not handled twice."""
    idempotency_max_entries: int = Field(default=10_000, ge=0)
    idempotency_max_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    """Bytes of encoded answers the window keeps; the oldest leave first past it."""
    payload_schema: dict[str, JsonValue] | None = None
    """JSON Schema (2020-12) every command's payload must satisfy: one that does not is
    answered with an error (``invalid_payload``, naming the JSON Pointer and the rule)
    and dead-lettered before the handler runs. In a file: the name of a JSON or YAML file
    beside the contract."""
    start_from: Literal["earliest", "latest"] = "earliest"
    """Where the node's command partitions start when no runtime ever committed on them:
    ``earliest`` answers what was sent before any runtime hosted it (its first start on
    a fresh cluster), ``latest`` only what is sent after. Where some runtime committed,
    the node resumes at the furthest commit of any runtime, whichever hosts it now."""
    fan_out: bool = False
    """Every runtime hosting the node answers every command (each from its own commits).
    Otherwise a node is answered once per cluster: a runtime refuses to start while
    another runtime reads the node's commands."""
    result_schema: dict[str, JsonValue] | None = None
    """JSON Schema every ok result's payload must satisfy: one that does not is an error
    (``invalid_result``) and a dead letter, never a silent pass."""

    @field_validator("payload_schema", "result_schema")
    @classmethod
    def _check_schema(cls, value: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        if value is not None:
            PayloadSchema(value)
        return value

    @property
    def contract_id(self) -> str:
        """``<node_id>@<version>``."""
        return contract_id(self.node_id, self.version)

    def accepts_tenant(self, tenant_id: str) -> bool:
        """Whether an envelope of ``tenant_id`` is inside this node's tenant scope."""
        return self.tenant_scope == "global" or tenant_id in self.tenant_scope


_HANDLER_SETTINGS: Final = (
    "timeout_s",
    "retry",
    "idempotency_window_s",
    "idempotency_max_entries",
    "idempotency_max_bytes",
)
"""Settings of an effect's handler calls, which a pure node's decisions do not have."""


class PureNodeContract(BaseNodeContract):
    """Fields of a pure node (compute, reducer, orchestrator): no handler call to time or retry."""

    @model_validator(mode="after")
    def _no_handler_settings(self) -> Self:
        given = [name for name in _HANDLER_SETTINGS if name in self.model_fields_set]
        if given:
            raise ValueError(
                f"{', '.join(given)}: a {self.kind.value} node's decisions are not timed, "
                "retried or remembered in an idempotency window: they are pure, so a command "
                "decided again gives the same answer (a reducer's or an orchestrator's state "
                "knows what it holds); remove " + ("it" if len(given) == 1 else "them")
            )
        return self


class LocalEffect(_Model):
    """In-process work: echo the payload, or a trivial transformation of it."""

    operation: Literal["echo", "uppercase"] = "echo"
    """``echo`` returns the payload; ``uppercase`` upper-cases every string value in it."""


class HttpEffect(_Model):
    """An HTTP request built from the payload."""

    url_template: str = Field(min_length=1)
    """URL with ``{name}`` placeholders filled from payload keys."""
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: Literal["payload", "none"] = "payload"
    """``payload`` sends the command payload as the JSON body (not for GET/HEAD)."""
    max_response_bytes: int = Field(default=1024 * 1024, ge=1)
    accepted_statuses: tuple[int, ...] = ()
    """4xx statuses that are answers, not failures (``404`` for a lookup that may miss);
    any other 4xx is a non-retryable ``http_status`` error. 2xx and 3xx always are
    answers; 5xx, 408, 425 and 429 are retried."""

    @field_validator("accepted_statuses")
    @classmethod
    def _check_accepted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        wrong = [status for status in value if not 400 <= status <= 499]
        if wrong:
            raise ValueError(f"accepted_statuses are 4xx statuses; {wrong} are not")
        return value

    @field_validator("url_template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("url_template must start with http:// or https://")
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        except ValueError as exc:
            raise ValueError(f"url_template is not a valid template: {exc}") from None
        for name in fields:
            if not name.isidentifier():
                raise ValueError(f"url_template placeholder {{{name}}} must be a payload key name")
        return value

    @property
    def placeholders(self) -> tuple[str, ...]:
        """Payload keys the URL template needs."""
        return tuple(n for _, n, _, _ in string.Formatter().parse(self.url_template) if n)


class DbEffect(_Model):
    """A SQL statement with ``:name`` parameters bound from JSONPath expressions."""

    connection: str = "default"
    sql: str = Field(min_length=1)
    params: dict[str, str] = Field(default_factory=dict)
    """Parameter name to JSONPath into the envelope, e.g. ``$.payload.user_id``."""

    @field_validator("connection")
    @classmethod
    def _check_connection(cls, value: str) -> str:
        return check_slug(value)

    @model_validator(mode="after")
    def _check_parameters(self) -> Self:
        compiled = compile_named_sql(self.sql)
        unmapped = [name for name in compiled.names if name not in self.params]
        if unmapped:
            hint = ", ".join(f'{n}: "$.payload.{n}"' for n in unmapped)
            raise ValueError(
                f"db.sql uses {', '.join(':' + n for n in unmapped)} with no entry in db.params; "
                f"add {hint}"
            )
        unused = [name for name in self.params if name not in compiled.names]
        if unused:
            raise ValueError(
                f"db.params maps {', '.join(unused)}, which db.sql never uses; "
                "remove the mapping or use the parameter"
            )
        for name, path in self.params.items():
            try:
                JsonPath(path)
            except ValueError as exc:
                raise ValueError(f"db.params.{name}: {exc}") from None
        return self

    @property
    def compiled(self) -> CompiledSql:
        """The SQL with ``$n`` placeholders, and the parameter name of each."""
        return compile_named_sql(self.sql)


class DurableIdempotency(_Model):
    """Answers kept in PostgreSQL (table ``onex_answers``), across restarts.

    A command redelivered after a restart is answered from its record instead of
    executed again.

    For a db node the record is written in the same database transaction as its
    statement, so the statement's effect and the record commit together.
    """

    connection: str | None = None
    """The database (``databases.<name>`` in the config) that keeps the records: by
    default a db node's own ``db.connection``, else ``default``."""
    retention_s: float = Field(default=7 * 86_400, gt=0)
    """How long an answer is kept."""
    max_entries: int = Field(default=1_000_000, ge=1)
    """How many answers of the node are kept at most (the oldest go first)."""


class ThenCommand(_Model):
    """A command sent to another node with each ``ok`` result: a flow chained by topics.

    Its payload is built by JSONPath from ``$.command`` (the command handled) and
    ``$.result`` (the result's payload); it keeps the flow's correlation id, is caused
    by the command, and its envelope id is derived from the command's, so a command
    handled twice forwards the same envelope (which its node answers once).
    """

    node_id: NodeId
    payload: dict[str, str] = Field(min_length=1)
    """Field of the new command's payload to JSONPath, e.g. ``vector: "$.result.vector"``."""
    max_hops: int = Field(default=32, ge=1, le=10_000)
    """Forwards a flow may have taken to reach this node's command and still go on: past
    it the command is answered with an error and dead-lettered (``loop``), not
    forwarded. Cuts loops that only show at run time."""

    @field_validator("payload")
    @classmethod
    def _check_paths(cls, value: dict[str, str]) -> dict[str, str]:
        for name, path in value.items():
            try:
                parsed = JsonPath(path)
            except ValueError as exc:
                raise ValueError(f"then.payload.{name}: {exc}") from None
            if not parsed.steps or parsed.steps[0] not in ("command", "result"):
                raise ValueError(
                    f"then.payload.{name}: {path!r} must start with $.command or $.result"
                )
        return value


class EffectContract(BaseNodeContract):
    """A node whose handler does work outside the runtime: local, HTTP, database or model."""

    kind: Literal[NodeKind.EFFECT] = NodeKind.EFFECT
    effect_type: EffectFamily
    local: LocalEffect | None = None
    http: HttpEffect | None = None
    db: DbEffect | None = None
    llm: LlmEffect | None = None
    embedding: EmbeddingEffect | None = None
    vector: VectorEffect | None = None
    durable_idempotency: DurableIdempotency | None = None
    """Keep answers in PostgreSQL across restarts (nodes with side effects)."""
    then: ThenCommand | None = None
    """Send a command to another node with each ``ok`` result (a chained flow)."""

    @property
    def answers_connection(self) -> str | None:
        """The database keeping this node's answers, if it keeps them durably."""
        if self.durable_idempotency is None:
            return None
        if self.durable_idempotency.connection is not None:
            return self.durable_idempotency.connection
        return self.db.connection if self.db is not None else "default"

    @model_validator(mode="before")
    @classmethod
    def _default_local(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("effect_type") == "local" and "local" not in data:
            return {**data, "local": {}}
        return data

    @model_validator(mode="after")
    def _check_family_section(self) -> Self:
        family = self.effect_type.value
        if getattr(self, family) is None:
            raise ValueError(f"effect_type is {family!r}, so a '{family}:' section is required")
        for other in EffectFamily:
            if other is not self.effect_type and getattr(self, other.value) is not None:
                raise ValueError(
                    f"effect_type is {family!r}, "
                    f"so the '{other.value}:' section does not belong here"
                )
        durable = self.durable_idempotency
        if (
            durable is not None
            and self.db is not None
            and durable.connection not in (None, self.db.connection)
        ):
            raise ValueError(
                f"durable_idempotency.connection is {durable.connection!r} but db.connection is "
                f"{self.db.connection!r}: a db node keeps its answers in its own database, in "
                "the statement's transaction; drop durable_idempotency.connection"
            )
        return self


class ConsumeMode(enum.StrEnum):
    """Which command topics a runtime consumes."""

    HOSTED = "hosted"
    """The command topics of the nodes it hosts, and its own: several runtimes share a
    cluster, and a command for a node no runtime hosts waits on its topic."""
    MATCHING = "matching"
    """Every topic its patterns match: commands for nodes it does not host are
    dead-lettered (``unknown_node``, ``not_hosted``). For one runtime per cluster."""


class Subscriptions(_Model):
    """Which command topics a runtime consumes.

    ``cmd_topics`` patterns bound what the runtime may host (a hosted node whose command
    topic no pattern matches is a start-up error); ``consume`` says whether it reads only
    its nodes' topics (the default) or every topic the patterns match.
    """

    cmd_topics: tuple[str, ...] = Field(min_length=1)
    consume: ConsumeMode = ConsumeMode.HOSTED

    @field_validator("cmd_topics")
    @classmethod
    def _check_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            TopicPattern(pattern)
        return value

    @property
    def patterns(self) -> tuple[TopicPattern, ...]:
        """The compiled patterns."""
        return tuple(TopicPattern(p) for p in self.cmd_topics)


class HandlerFamilies(_Model):
    """Handler families a runtime enables."""

    families: tuple[EffectFamily, ...] = Field(min_length=1)


class HostSelector(_Model):
    """Which nodes of the contract tree a runtime hosts."""

    node_ids: tuple[NodeId, ...] = Field(min_length=1)

    @field_validator("node_ids")
    @classmethod
    def _check_unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({n for n in value if value.count(n) > 1})
        if repeated:
            raise ValueError(f"node ids listed more than once: {', '.join(repeated)}")
        return value


class RuntimeHostContract(_Model):
    """A runtime host: what it subscribes to, which families it enables, which nodes it hosts."""

    kind: Literal[NodeKind.RUNTIME_HOST] = NodeKind.RUNTIME_HOST
    node_id: RuntimeId
    version: SemVer
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    subscriptions: Subscriptions
    handlers: HandlerFamilies
    host_selector: HostSelector
    consumer_group: RuntimeId | None = None
    """Kafka consumer group; defaults to the runtime id."""

    @property
    def contract_id(self) -> str:
        """``<runtime_id>@<version>``."""
        return contract_id(self.node_id, self.version)
