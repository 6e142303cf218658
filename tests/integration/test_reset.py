"""Resetting the online model in a real worker: control request in, learner resets, answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models import online
from riverwatch.models.features import FEATURE_NAMES
from riverwatch.models.serving import ONLINE
from riverwatch.stores.offline import OfflineStore
from riverwatch.stores.snapshots import SnapshotStore
from tests.support.builders import T0, tx
from tests.support.topics import Topics, ask
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration

N = 60
STEP_S = 7200  # one transaction every 2 hours: 60 of them span 5 days of event time


def weights(model: Any) -> dict[str, float]:
    """The logistic regression's weights of an online model."""
    return dict(model["LogisticRegression"].weights)


def stored_model(snapshots: SnapshotStore) -> tuple[Any, dict[str, Any]] | None:
    got = snapshots.load(ONLINE)
    return online.load_snapshot(got[0]) if got else None


def warmed_on_store(settings: Settings, start: float, end: float) -> Any:
    """A fresh model warmed on the stored rows with start <= epoch <= end, oldest first."""
    rows = OfflineStore(settings.data_dir).read(start, end + 1e-3)
    return online.warmed(rows[list(FEATURE_NAMES)].to_numpy(float), rows["label"].to_numpy())


def test_reset_replaces_the_online_model_from_recent_rows(
    settings: Settings, tmp_path: Path, topics: Topics
) -> None:
    # a day holds the last 13 of 60 rows, of which RIVERWATCH_RESET_WARM_MAX_ROWS keeps 10
    settings = settings.model_copy(update={"reset_warm_days": 1, "reset_warm_max_rows": 10})
    names = Names(settings.topic_prefix)
    r = redis_client(redis_config(settings))
    snapshots = SnapshotStore(r, names)
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    with running_worker(settings, tmp_path / "worker.log"):
        for i in range(N):  # big amounts are fraud, small ones are not
            event = json.loads(tx(i, card=f"c{i}", amount=500.0 if i % 2 else 5.0))
            event["timestamp"] = T0 + i * STEP_S
            p.produce(names.topic("transactions"), json.dumps(event).encode())
        p.flush(10)
        poll(lambda: all(r.get(names.score(f"e{i}")) for i in range(N)), 30, "every score")
        for i in range(N):
            lab = {"event_id": f"e{i}", "label": i % 2, "timestamp": T0 + 8 * 86400}
            p.produce(names.topic("labels"), json.dumps(lab).encode(), f"e{i}".encode())
        p.flush(10)

        # The live model learned the labels in event order: it is the whole store, warmed.
        def learned_all() -> tuple[Any, dict[str, Any]] | None:
            got = stored_model(snapshots)
            if got is None or len(OfflineStore(settings.data_dir).read(0, 2e9)) < N:
                return None
            everything = warmed_on_store(settings, 0, 2e9)
            same = weights(got[0]) == pytest.approx(weights(everything), abs=1e-9)
            return got if same else None

        before, before_meta = poll(learned_all, 30, "a snapshot of all labels")
        assert int(before_meta["version"]) > 0
        assert weights(before) != pytest.approx(weights(online.make_model()), abs=1e-6)

        rid = ask(settings, "reset", ONLINE)
        done = topics.wait("control", {"request_id": rid, "status": "done"})
        d = done["details"]
        assert done["action"] == "reset" and done["target"] == ONLINE
        assert d["previous_version"] == before_meta["version"]
        assert d["version"] == d["previous_version"] + 1
        newest = T0 + (N - 1) * STEP_S
        assert d["warm_window"] == [newest - 86_400, newest]
        # events 47..59 are within a day of the newest (both ends in); the newest 10 of them
        assert d["warm_rows"] == 10
        assert d["requests"] == [rid]
        assert done["reason"].startswith(f"online model version {d['previous_version']} -> ")

        after, after_meta = stored_model(snapshots) or (None, {})
        assert after_meta["version"] == d["version"]
        assert after_meta["reset_from"] == d["previous_version"]
        assert weights(after) != pytest.approx(weights(before), abs=1e-6)
        expected = warmed_on_store(settings, T0 + (N - 10) * STEP_S, newest)
        assert weights(after) == pytest.approx(weights(expected), abs=1e-12)
        assert r.hlen(names.learner_reset()) == 0
        assert r.hget(names.learner_stats(), "resets") == b"1"  # the monitor follows it

        alert = topics.wait("alerts", {"alert_id": f"reset-{rid}"})
        assert alert["kind"] == "retrain" and alert["subject"] == ONLINE
        assert alert["severity"] == "info" and alert["message"].startswith("reset done: ")
        assert alert["details"]["version"] == d["version"]

        # scorers reload the reset model
        p.produce(names.topic("transactions"), tx(1000, card="n1", amount=50.0))
        p.flush(10)
        score = orjson.loads(poll(lambda: r.get(names.score("e1000")), 30, "e1000 scored"))
        assert score["model_versions"][ONLINE] == str(d["version"])

        # two requests at once: both answered (by one reset or by two)
        first, second = ask(settings, "reset", ONLINE), ask(settings, "reset", ONLINE)
        for req in (first, second):
            again = topics.wait("control", {"request_id": req, "status": "done"})
            assert again["details"]["version"] > d["version"]
            assert again["details"]["warm_rows"] == 10

        # only the online model can be reset, and the trainer says so at once
        bad = ask(settings, "reset", "batch")
        failed = topics.wait("control", {"request_id": bad, "status": "failed"})
        assert failed["reason"].startswith("cannot reset 'batch': only the online model")
        assert failed["details"] == {"resettable": [ONLINE]}
        warn = topics.wait("alerts", {"alert_id": f"reset-{bad}"})
        assert warn["kind"] == "retrain" and warn["severity"] == "warning"
        answers = [c["status"] for c in topics.seen["control"] if c["request_id"] == bad]
        assert "done" not in answers
    r.close()
