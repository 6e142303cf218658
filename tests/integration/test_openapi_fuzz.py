"""Schemathesis against the real API over real HTTP: every check, every phase, bounded.

The OpenAPI document is the contract: each operation is fuzzed with valid and invalid data
(examples, coverage, fuzzing and stateful phases), once with an admin key and once with an
ingest-only key, and every answer must be documented and match its schema (no 5xx, no
undocumented status, header or body, invalid data refused, valid data accepted).

schemathesis 4 runs every check by default; the few per-operation exceptions are in
schemathesis.toml, each with its reason (``--checks all`` on the command line would override
them, so it is not passed).

Bounded and reproducible: deterministic generation (no randomness, no example database), a
fixed number of examples per operation, one worker, and a deadline for the whole run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from riverwatch.core.settings import Settings
from tests.support.apiserver import Api, running_api

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = Path(__file__).with_name("schemathesis.toml")  # the checks' few exceptions, explained
MAX_EXAMPLES = 25
RUN_DEADLINE_S = 240  # the whole schemathesis run for one key, not a speed assertion


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    # Alert streams end after a second (the client would reconnect): a stream the fuzzer
    # opens must answer within its request timeout.
    with running_api(settings.model_copy(update={"alert_sse_max_s": 1.0})) as running:
        yield running


def schemathesis(api: Api, key: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """``schemathesis run`` with every check against the running API, authenticated by ``key``."""
    base = str(api.http.base_url).rstrip("/")
    args = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG)),
        *("run", f"{base}/openapi.json"),
        *("--mode", "all", "--workers", "1"),
        *("--max-examples", str(MAX_EXAMPLES), "--generation-deterministic"),
        *("--request-timeout", "20", "--no-color"),
        *("-H", f"Authorization: Bearer {api.keys[key]}"),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE_S,
        env=env,
        cwd=workdir,
        check=False,
    )


@pytest.mark.parametrize("key", ["root", "writer"])
def test_the_api_keeps_its_openapi_contract(api: Api, key: str, tmp_path: Path) -> None:
    run = schemathesis(api, key, tmp_path)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    # Every documented operation was exercised, none skipped by a filter or a load error.
    selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", run.stdout)
    assert selected and len(set(selected.groups())) == 1, run.stdout[-3000:]
