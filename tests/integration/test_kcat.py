"""Debian's kcat, the tool people reach for to poke a topic, against Apache Kafka.

A transaction produced with kcat is scored (its score is on ``scores``, read back with kcat),
and a malformed one lands in ``deadletter`` with its reason. Tansu cannot serve kcat at all
(``ApiVersionRequest failed: Local: Read underflow``), so these tests always use Apache Kafka
(the ``apache_kafka`` fixture: the session's broker when it is Kafka, else one of its own).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def kcat(settings: Settings, *args: str, stdin: bytes = b"") -> bytes:
    """Run kcat against ``settings``' broker; its stdout."""
    exe = shutil.which("kcat")
    if exe is None:
        pytest.fail("kcat is missing: run `make kcat` (apt-get install kcat)")
    done = subprocess.run(
        [exe, "-b", settings.kafka_bootstrap or "", *args],
        input=stdin,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, f"kcat {' '.join(args)}: {done.stderr.decode()}"
    return done.stdout


def read_topic(settings: Settings, topic: str) -> list[dict[str, object]]:
    """Every record of ``topic`` so far, read with kcat from the beginning to the end."""
    out = kcat(settings, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-D", "\n\x1e\n")
    return [orjson.loads(v) for v in out.split(b"\n\x1e\n") if v.strip()]


def test_kcat_transaction_is_scored_and_malformed_one_dead_lettered(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings
    names = Names(settings.topic_prefix)
    good = {
        "event_id": "kcat-1",
        "timestamp": T0,
        "card_id": "c1",
        "terminal_id": "t1",
        "amount": 42.5,
    }
    lines = b"c1|" + json.dumps(good).encode() + b"\nc1|{not json\n"
    with running_worker(settings, tmp_path / "worker.log"):
        kcat(settings, "-P", "-t", names.topic("transactions"), "-K", "|", stdin=lines)
        scores = poll(
            lambda: [s for s in read_topic(settings, names.topic("scores")) if s],
            60,
            "the score of kcat-1 on scores",
            every=0.5,
        )
        dead = poll(
            lambda: read_topic(settings, names.topic("deadletter")),
            60,
            "the malformed record on deadletter",
            every=0.5,
        )
    assert [s["event_id"] for s in scores] == ["kcat-1"]
    assert 0.0 <= float(scores[0]["score"]) <= 1.0  # type: ignore[arg-type]
    assert len(dead) == 1
    assert dead[0]["value"] == "{not json"
    assert dead[0]["origin_topic"] == names.topic("transactions")
    assert dead[0]["error"]
