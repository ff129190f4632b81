"""Identifiers and node kinds (SPEC §2).

Identifiers are plain ``str`` at run time, validated where they enter the system:
pydantic models use the annotated types below, other callers use :func:`check_slug`.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Final

from pydantic import AfterValidator

__all__ = [
    "ContractId",
    "NodeId",
    "NodeKind",
    "RuntimeId",
    "SemVer",
    "TenantId",
    "check_contract_id",
    "check_semver",
    "check_slug",
    "contract_id",
]

SLUG_PATTERN: Final = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
"""What :func:`check_slug` accepts."""
_SLUG: Final = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_SEMVER: Final = (
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
SEMVER_PATTERN: Final = re.compile(f"^{_SEMVER}$")
CONTRACT_ID_PATTERN: Final = re.compile(f"^{_SLUG}@{_SEMVER}$")
"""``<node_id>@<semver>``: what :func:`check_contract_id` accepts, as one pattern."""


class NodeKind(enum.StrEnum):
    """What a node is; decides which contract model describes it."""

    EFFECT = "effect"
    COMPUTE = "compute"
    REDUCER = "reducer"
    ORCHESTRATOR = "orchestrator"
    RUNTIME_HOST = "runtime_host"


def check_slug(value: str) -> str:
    """Return ``value`` if it is a valid slug, else raise ``ValueError`` saying why."""
    if not SLUG_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not a valid slug: use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. 'echo-node')"
        )
    return value


def check_semver(value: str) -> str:
    """Return ``value`` if it is a semantic version such as ``0.1.0``, else raise ``ValueError``."""
    if not SEMVER_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not a semantic version: write MAJOR.MINOR.PATCH, e.g. '0.1.0'"
        )
    return value


def check_contract_id(value: str) -> str:
    """Return ``value`` if it reads ``<node_id>@<semver>``, else raise ``ValueError``."""
    node, sep, version = value.partition("@")
    if not sep:
        raise ValueError(
            f"{value!r} is not a contract id: write '<node_id>@<version>', e.g. 'echo-node@0.1.0'"
        )
    check_slug(node)
    check_semver(version)
    return value


def contract_id(node_id: str, version: str) -> str:
    """Build the contract id ``<node_id>@<version>`` after checking both parts."""
    return check_contract_id(f"{node_id}@{version}")


NodeId = Annotated[str, AfterValidator(check_slug)]
"""A node's slug, e.g. ``echo-node``."""
TenantId = Annotated[str, AfterValidator(check_slug)]
"""A tenant's slug; ``global`` is the default tenant."""
RuntimeId = Annotated[str, AfterValidator(check_slug)]
"""A runtime host's slug, e.g. ``runtime-dev``."""
SemVer = Annotated[str, AfterValidator(check_semver)]
"""A semantic version string, e.g. ``0.1.0``."""
ContractId = Annotated[str, AfterValidator(check_contract_id)]
"""``<node_id>@<version>``, e.g. ``echo-node@0.1.0``."""
