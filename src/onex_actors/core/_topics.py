"""Topic names and topic patterns (SPEC §4).

Grammar: ``onex.<plane>.<env>.<tenant>.<type>.<target>.<slug>.v<N>``. In patterns ``*``
matches exactly one segment and ``#``, only as the last segment, one or more.
"""

from __future__ import annotations

import functools
import re
from typing import Final

import attrs

from ._errors import TopicError

__all__ = [
    "Topic",
    "TopicPattern",
    "cmd_topic",
    "dlq_topic",
    "evt_topic",
    "log_topic",
    "state_topic",
]

PREFIX: Final = "onex"
PLANES: Final = frozenset({"app", "sys"})
TYPES: Final = frozenset({"cmd", "evt", "log", "dlq", "state"})
_SEGMENT: Final = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_VERSION: Final = re.compile(r"^v([1-9][0-9]{0,5})$")
_GRAMMAR: Final = "onex.<plane>.<env>.<tenant>.<type>.<target>.<slug>.v<N>"


def _check_segment(name: str, value: str) -> None:
    if not _SEGMENT.match(value):
        raise TopicError(
            f"topic segment <{name}> {value!r} is not a slug (lowercase letters, digits, '-')"
        )


@attrs.frozen
class Topic:
    """A parsed topic name. ``str(topic)`` formats it back."""

    plane: str
    env: str
    tenant: str
    type: str
    target: str
    slug: str
    version: int = 1

    def __attrs_post_init__(self) -> None:
        if self.plane not in PLANES:
            raise TopicError(f"topic plane {self.plane!r} must be one of {sorted(PLANES)}")
        if self.type not in TYPES:
            raise TopicError(f"topic type {self.type!r} must be one of {sorted(TYPES)}")
        for name in ("env", "tenant", "target", "slug"):
            _check_segment(name, getattr(self, name))
        if not 1 <= self.version <= 999_999:
            raise TopicError(f"topic version must be between 1 and 999999, got {self.version}")

    def __str__(self) -> str:
        return ".".join(
            (
                PREFIX,
                self.plane,
                self.env,
                self.tenant,
                self.type,
                self.target,
                self.slug,
                f"v{self.version}",
            )
        )

    @classmethod
    def parse(cls, name: str) -> Topic:
        """Parse a topic name; raise ``TopicError`` saying which part breaks the grammar."""
        parts = name.split(".")
        if len(parts) != 8 or parts[0] != PREFIX:
            raise TopicError(f"topic {name!r} does not follow the grammar {_GRAMMAR}")
        version = _VERSION.match(parts[7])
        if not version:
            raise TopicError(f"topic {name!r} must end with a version such as 'v1'")
        try:
            plane, env, tenant, kind, target, slug = parts[1:7]
            return cls(plane, env, tenant, kind, target, slug, int(version.group(1)))
        except TopicError as exc:
            raise TopicError(f"topic {name!r}: {exc}") from None


@functools.lru_cache(maxsize=4096)
def cmd_topic(node_id: str, *, tenant: str = "global", env: str = "local") -> str:
    """Topic carrying commands to ``node_id``."""
    return str(Topic("app", env, tenant, "cmd", "node", node_id))


@functools.lru_cache(maxsize=4096)
def evt_topic(node_id: str, *, tenant: str = "global", env: str = "local") -> str:
    """Topic carrying result events from ``node_id``."""
    return str(Topic("app", env, tenant, "evt", "node", node_id))


@functools.lru_cache(maxsize=4096)
def dlq_topic(node_id: str, *, tenant: str = "global", env: str = "local") -> str:
    """Topic carrying dead letters of ``node_id``."""
    return str(Topic("app", env, tenant, "dlq", "node", node_id))


@functools.lru_cache(maxsize=4096)
def state_topic(node_id: str, *, tenant: str = "global", env: str = "local") -> str:
    """Compacted changelog topic holding the state of reducer ``node_id``, per key."""
    return str(Topic("app", env, tenant, "state", "node", node_id))


@functools.lru_cache(maxsize=4096)
def log_topic(runtime_id: str, *, tenant: str = "global", env: str = "local") -> str:
    """Topic carrying the log envelopes of runtime ``runtime_id``."""
    return str(Topic("sys", env, tenant, "log", "runtime", runtime_id))


_PATTERN_SEGMENT: Final = re.compile(r"^[a-z0-9-]+$")


@attrs.frozen
class TopicPattern:
    """A compiled topic pattern: ``*`` is one segment, a trailing ``#`` one or more."""

    text: str
    regex: re.Pattern[str] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(_to_regex(self.text)))

    def matches(self, topic: str) -> bool:
        """Whether ``topic`` matches this pattern."""
        return self.regex.fullmatch(topic) is not None

    @property
    def posix(self) -> str:
        """Return this pattern as an anchored POSIX extended regex (``^...$``).

        librdkafka takes a subscription starting with ``^`` as a regex in that dialect:
        no ``(?:`` groups, and dots escaped; slug segments need no escaping.
        """
        segments = self.text.split(".")
        parts: list[str] = []
        for index, segment in enumerate(segments):
            if segment == "#":
                if index == 0:
                    parts.append(r"[^.]+(\.[^.]+)*")
                else:
                    parts[-1] += r"(\.[^.]+)+"
            elif segment == "*":
                parts.append(r"[^.]+")
            else:
                parts.append(segment)
        return "^" + r"\.".join(parts) + "$"


def _to_regex(pattern: str) -> str:
    segments = pattern.split(".")
    parts: list[str] = []
    for index, segment in enumerate(segments):
        if segment == "#":
            if index != len(segments) - 1:
                raise TopicError(f"topic pattern {pattern!r}: '#' may only be the last segment")
            if index == 0:
                parts.append(r"[^.]+(?:\.[^.]+)*")
            else:
                parts[-1] += r"(?:\.[^.]+)+"
            continue
        if segment == "*":
            parts.append(r"[^.]+")
        elif _PATTERN_SEGMENT.match(segment):
            parts.append(re.escape(segment))
        else:
            raise TopicError(
                f"topic pattern {pattern!r}: segment {segment!r} must be a slug, '*' or a final '#'"
            )
    return r"\.".join(parts)
