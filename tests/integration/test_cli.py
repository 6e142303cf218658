"""The command line against the real stack: API keys, worker metrics port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from core.apikeys import list_keys
from core.names import Names
from core.redis import redis_client
from core.settings import Settings, to_env
from riverwatch.procs import free_port
from tests.integration.workers import poll, running_worker

pytestmark = pytest.mark.integration


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **to_env(settings))
    return subprocess.run(
        [sys.executable, "-m", "riverwatch", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
    )


def test_keys_create_list_revoke(settings: Settings) -> None:
    made = cli(settings, "keys", "create", "--name", "ci-bot", "--scopes", "ingest,read")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("rw_")
    infos = list(list_keys(redis_client(settings), Names(settings.topic_prefix)).values())
    assert [(i.name, i.scopes) for i in infos] == [("ci-bot", ("ingest", "read"))]
    listed = cli(settings, "keys", "list")
    assert "ci-bot\tingest,read" in listed.stdout and key not in listed.stdout
    bad = cli(settings, "keys", "create", "--name", "x", "--scopes", "root")
    assert bad.returncode != 0 and "root" in (bad.stderr + bad.stdout)
    assert "revoked 1 key(s)" in cli(settings, "keys", "revoke", "--name", "ci-bot").stdout


def test_worker_serves_its_own_metrics(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    with running_worker(
        settings.model_copy(update={"worker_metrics_port": port}), tmp_path / "w.log"
    ):
        text = poll(lambda: httpx.get(f"http://127.0.0.1:{port}/metrics").text, 30, "/metrics")
        assert "riverwatch_score_latency_seconds" in text
