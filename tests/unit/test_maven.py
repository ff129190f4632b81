"""The broker's jars come from a Maven repository over HTTPS, checked by sha256 (no Maven)."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import pytest

from onex_actors.core import ConfigError
from onex_actors.devinfra._maven import PinnedJar, fetch_jars, parse_pinned_jars

JAR = b"PK\x03\x04 not really a jar, but bytes with a digest"


def _repository(root: Path) -> str:
    folder = root / "org" / "example" / "thing" / "1.2"
    folder.mkdir(parents=True)
    (folder / "thing-1.2.jar").write_bytes(JAR)
    return root.as_uri()


def _pinned(sha256: str) -> list[PinnedJar]:
    return parse_pinned_jars(f"# a comment\n\norg.example:thing:1.2 {sha256}  # trailing\n")


def test_the_shipped_list_pins_the_broker_and_every_jar_by_digest() -> None:
    text = resources.files("onex_actors.devinfra").joinpath("broker-jars.txt").read_text()
    jars = parse_pinned_jars(text)
    names = {jar.file_name for jar in jars}
    assert "kafka_2.13-4.1.1.jar" in names
    assert "kafka-clients-4.1.1.jar" in names
    assert all(len(jar.sha256) == 64 for jar in jars)
    assert (
        jars[0].url("https://repo1.maven.org/maven2/").startswith("https://repo1.maven.org/maven2/")
    )


def test_a_jar_is_fetched_once_and_kept_under_its_maven_name(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "repo")
    jars = _pinned(hashlib.sha256(JAR).hexdigest())
    libs = tmp_path / "libs"
    assert fetch_jars(jars, libs, repository=repository) == 1
    assert (libs / "thing-1.2.jar").read_bytes() == JAR
    assert fetch_jars(jars, libs, repository=repository) == 0
    assert sorted(p.name for p in libs.iterdir()) == ["thing-1.2.jar"]


def test_a_jar_whose_digest_differs_is_refused_and_not_kept(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "repo")
    libs = tmp_path / "libs"
    with pytest.raises(ConfigError, match="not the pinned 0000"):
        fetch_jars(_pinned("0" * 64), libs, repository=repository)
    assert list(libs.iterdir()) == []


def test_an_unreachable_repository_says_how_to_get_the_jar(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ONEX_MAVEN_REPOSITORY .* or put thing-1\.2\.jar in"):
        fetch_jars(_pinned("0" * 64), tmp_path, repository=(tmp_path / "none").as_uri())


def test_a_malformed_line_names_its_number() -> None:
    with pytest.raises(ConfigError, match="line 2: expected 'group:artifact:version sha256'"):
        parse_pinned_jars("org.example:thing:1.2 abc\norg.example:thing\n")
