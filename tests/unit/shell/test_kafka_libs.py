"""The Apache Kafka launcher's jar cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from riverwatch.core.errors import ServiceUnavailable
from riverwatch.shell import kafka_libs


def test_cached_jars_are_used_without_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIVERWATCH_KAFKA_CACHE", str(tmp_path))
    libs = tmp_path / f"kafka-{kafka_libs.KAFKA_VERSION}" / "libs"
    libs.mkdir(parents=True)
    monkeypatch.setattr(kafka_libs.shutil, "which", lambda _name: None)
    assert kafka_libs.fetch_libs() == libs


def test_no_maven_and_no_cache_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIVERWATCH_KAFKA_CACHE", str(tmp_path))
    monkeypatch.setattr(kafka_libs.shutil, "which", lambda _name: None)
    with pytest.raises(ServiceUnavailable, match=r"apt-get install .*maven"):
        kafka_libs.fetch_libs()
