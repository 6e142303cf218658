"""`riverwatch up --broker kafka`: the whole system on Apache Kafka, and nothing left after."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.support.up import alive, descendants, up
from tests.support.workers import poll

pytestmark = pytest.mark.integration


def test_up_on_apache_kafka_scores_a_posted_transaction_then_stops_everything(
    tmp_path: Path,
) -> None:
    with up(tmp_path, "--broker", "kafka") as (proc, base, key, lines):
        assert any("starting embedded broker (Apache Kafka)" in ln for ln in lines), lines
        family = descendants(proc.pid)
        java = [p for p in family if "kafka.Kafka" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(java) == 1, "no Apache Kafka process under `up`"
        h = {"Authorization": f"Bearer {key}"}
        poll(lambda: httpx.get(f"{base}/readyz").status_code == 200, 60, "readyz")
        tx = {
            "event_id": "on-kafka",
            "timestamp": "2026-03-01T12:00:00Z",
            "card_id": "c",
            "terminal_id": "t",
            "amount": 12.5,
        }
        assert httpx.post(f"{base}/v1/transactions", json=tx, headers=h).status_code == 202
        got = poll(
            lambda: (
                (r := httpx.get(f"{base}/v1/scores/on-kafka", headers=h)).status_code == 200
                and r.json()
            ),
            60,
            "the posted transaction's score",
            every=0.1,
        )
        assert got["event_id"] == "on-kafka"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0
        poll(lambda: not any(alive(p) for p in family), 30, "every child, Kafka included, to exit")
