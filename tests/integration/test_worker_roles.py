"""Worker roles: a scoring process and a helper process (as `riverwatch up` and the manifests
run them) do together what one all-roles worker does, talking only through Kafka and Redis."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings, to_env
from riverwatch.models.serving import ONLINE
from riverwatch.shell.children import HELPER_ROLES, SCORER_ROLES
from tests.support.builders import T0, tx
from tests.support.topics import Topics, ask
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration
HOST = socket.gethostname()


def test_scorer_and_helper_processes_share_the_work(
    settings: Settings, tmp_path: Path, topics: Topics
) -> None:
    settings = settings.model_copy(update={"forecast_horizon": 3})
    names = Names(settings.topic_prefix)
    r = redis_client(redis_config(settings))
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    with (
        running_worker(settings, tmp_path / "scorer.log", SCORER_ROLES) as scorer,
        running_worker(settings, tmp_path / "helper.log", HELPER_ROLES) as helper,
    ):
        # /readyz counts scorers only: the helper beats into its own hash
        assert [k.decode() for k in r.hkeys(names.workers())] == [f"{HOST}:{scorer.pid}"]
        assert [k.decode() for k in r.hkeys(names.helpers())] == [f"{HOST}:{helper.pid}"]

        # scoring (scorer) -> scores -> the monitor (helper)
        n = 40
        for i in range(n):
            event = json.loads(tx(i, card=f"c{i % 5}", amount=500.0 if i % 2 else 5.0))
            event["timestamp"] = T0 + i * 600
            p.produce(names.topic("transactions"), json.dumps(event).encode())
        for i in range(n):  # labels: learned by the scorer's learner, windowed by the monitor
            lab = {"event_id": f"e{i}", "label": i % 2, "timestamp": T0 + 8 * 86400}
            p.produce(names.topic("labels"), json.dumps(lab).encode(), f"e{i}".encode())
        assert p.flush(10) == 0
        poll(lambda: all(r.get(names.score(f"e{i}")) for i in range(n)), 30, "every score")

        def monitor_saw(field: bytes, want: int) -> bool:
            return int(r.hget(names.monitor("stats"), field) or 0) >= want

        poll(lambda: monitor_saw(b"scores", n), 60, "the helper's monitor to see every score")
        poll(lambda: monitor_saw(b"labels", n), 60, "the helper's monitor to see every label")
        poll(lambda: int(r.hget(names.learner_stats(), "learned") or 0) >= n, 30, "learning")

        # metric points -> the helper's forecaster -> forecasts
        for k in range(30):
            point = {"series_id": "roles", "timestamp": T0 + 60 * k, "value": float(k % 7)}
            p.produce(names.topic("metrics"), orjson.dumps(point), b"roles")
        assert p.flush(10) == 0
        poll(lambda: r.exists(names.forecast_state("roles")), 60, "a forecaster snapshot")

        # reset: the helper's trainer records it, the scorer's learner carries it out
        rid = ask(settings, "reset", ONLINE)
        done = topics.wait("control", {"request_id": rid, "status": "done"}, timeout=90)
        assert done["details"]["requests"] == [rid]
        alert = topics.wait("alerts", {"alert_id": f"reset-{rid}"})
        assert alert["kind"] == "retrain"

        # the helper's alert dispatcher stores it for /v1/alerts and the SSE stream
        def dispatched() -> bool:
            entries = r.xrange(names.alert_stream())
            return any(rid.encode() in b"".join(fields.values()) for _, fields in entries)

        poll(dispatched, 30, "the dispatched alert in the alert stream")
    assert "Traceback" not in (tmp_path / "helper.log").read_text()
    assert "Traceback" not in (tmp_path / "scorer.log").read_text()
    r.close()


def test_worker_refuses_unknown_roles(settings: Settings) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "riverwatch", "worker", "--roles", "scoring,dreaming"],
        env=dict(os.environ, **to_env(settings)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "unknown role 'dreaming'" in out.stderr
