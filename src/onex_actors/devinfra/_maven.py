"""Jars from a Maven repository over plain HTTPS, checked against a pinned list (no Maven).

The list (``broker-jars.txt``) names each artifact as ``group:artifact:version sha256``;
a jar whose digest differs is refused. ``ONEX_MAVEN_REPOSITORY`` names a mirror.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

import attrs

from onex_actors.core import ConfigError

__all__ = ["MAVEN_CENTRAL", "PinnedJar", "fetch_jars", "parse_pinned_jars"]

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
logger = logging.getLogger("onex_actors.devinfra")


@attrs.frozen
class PinnedJar:
    """One artifact of a pinned list, and the sha256 its jar must have."""

    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def file_name(self) -> str:
        """``<artifact>-<version>.jar``, as Maven names it."""
        return f"{self.artifact}-{self.version}.jar"

    def url(self, repository: str) -> str:
        """Where ``repository`` serves the jar."""
        group_path = self.group.replace(".", "/")
        return (
            f"{repository.rstrip('/')}/{group_path}/{self.artifact}/{self.version}/{self.file_name}"
        )


def parse_pinned_jars(text: str) -> list[PinnedJar]:
    """Read a pinned list: one ``group:artifact:version sha256`` per line, ``#`` comments."""
    jars = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            coordinates, sha256 = line.split()
            group, artifact, version = coordinates.split(":")
        except ValueError:
            raise ConfigError(
                f"pinned jar list line {number}: expected 'group:artifact:version sha256', "
                f"got {raw!r}"
            ) from None
        jars.append(PinnedJar(group, artifact, version, sha256.lower()))
    return jars


def fetch_jars(jars: list[PinnedJar], into: Path, *, repository: str | None = None) -> int:
    """Download the jars missing from ``into``; return how many were fetched.

    Each is written under a temporary name and renamed once its digest matches, so an
    interrupted fetch leaves no half jar behind.
    """
    repository = repository or os.environ.get("ONEX_MAVEN_REPOSITORY") or MAVEN_CENTRAL
    missing = [jar for jar in jars if not (into / jar.file_name).is_file()]
    if not missing:
        return 0
    into.mkdir(parents=True, exist_ok=True)
    logger.info("fetching %d jars from %s (once)", len(missing), repository)
    for jar in missing:
        _fetch(jar, into, repository)
    return len(missing)


def _fetch(jar: PinnedJar, into: Path, repository: str) -> None:
    url = jar.url(repository)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            body = response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ConfigError(
            f"cannot fetch {url}: {exc}; set ONEX_MAVEN_REPOSITORY to a reachable mirror, "
            f"or put {jar.file_name} in {into}"
        ) from None
    digest = hashlib.sha256(body).hexdigest()
    if digest != jar.sha256:
        raise ConfigError(f"{url} has sha256 {digest}, not the pinned {jar.sha256}: refusing it")
    partial = into / f".{jar.file_name}.part"
    partial.write_bytes(body)
    partial.replace(into / jar.file_name)
