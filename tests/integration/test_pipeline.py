"""A real worker process against the real broker and Valkey: score, dead-letter, learn."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
import redis
from confluent_kafka import Producer

from riverwatch.core.events import parse_event
from riverwatch.core.names import Names
from riverwatch.core.outputs import Score
from riverwatch.core.settings import Settings
from riverwatch.stores.offline import OfflineStore
from tests.support.builders import T0, tx
from tests.support.topics import consume_all
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration


def test_plain_kafka_client_is_scored_and_bad_records_dead_lettered(
    settings: Settings, tmp_path: Path
) -> None:
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    # A plain confluent-kafka producer: no riverwatch code on the producing side.
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    with running_worker(settings, tmp_path / "worker.log"):
        for i in range(3):
            p.produce(names.topic("transactions"), tx(i, amount=10.0 * (i + 1)), b"c1")
        p.produce(names.topic("transactions"), b'{"event_id": "bad", "amount": -5}', b"c1")
        p.produce(names.topic("transactions"), b"not json at all", b"c1")
        for i in range(3, 5):
            p.produce(names.topic("transactions"), tx(i), b"c1")
        p.flush(10)
        blob = poll(lambda: r.get(names.score("e4")), 30, "the score of e4")
        score = parse_event(Score, blob)
        assert 0.0 <= score.score <= 1.0 and score.decision in ("approve", "review", "decline")
        for i in range(5):
            assert r.get(names.score(f"e{i}")) is not None, f"e{i} was not scored"
        # A bad label: the learner and the monitor both read it, one dead letter in all.
        p.produce(names.topic("labels"), b'{"event_id": "e0", "label": 7}', b"e0")
        p.flush(10)
        dead = [orjson.loads(v) for v in consume_all(settings, names.topic("deadletter"), 3)]
        label = [d for d in dead if d["origin_topic"] == names.topic("labels")]
        assert len(label) == 1 and "label" in label[0]["error"]
        with pytest.raises(AssertionError, match="timed out"):
            consume_all(settings, names.topic("deadletter"), 4, timeout=5)
        dead = [d for d in dead if d not in label]
        assert {d["value"] for d in dead} == {
            '{"event_id": "bad", "amount": -5}',
            "not json at all",
        }
        bad = next(d for d in dead if "bad" in d["value"])
        assert "amount" in bad["error"] and "card_id: Field required" in bad["error"]
        assert all(d["origin_topic"] == names.topic("transactions") for d in dead)
        assert all(isinstance(d["offset"], int) for d in dead)
        scores = consume_all(settings, names.topic("scores"), 5)
        assert sorted(orjson.loads(s)["event_id"] for s in scores) == [f"e{i}" for i in range(5)]
        # Features come from event time: e2 is the card's third transaction within the day.
        row = orjson.loads(r.get(names.feature_row("e2")) or b"{}")
        assert row["x"][4] == 3.0 and row["x"][5] == pytest.approx(20.0)


def test_labels_change_the_online_model_and_its_scores(settings: Settings, tmp_path: Path) -> None:
    # a label of an event never scored waits this long for it, then counts as unknown
    settings = settings.model_copy(update={"early_label_grace_s": 1.0})
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    with running_worker(settings, tmp_path / "worker.log"):
        n = 60
        for i in range(n):  # big amounts are fraud, small ones are not
            p.produce(
                names.topic("transactions"), tx(i, card=f"c{i}", amount=500.0 if i % 2 else 5.0)
            )
        p.flush(10)
        poll(lambda: r.get(names.score(f"e{n - 1}")), 30, "the first scores")
        before = orjson.loads(r.get(names.score("e1")) or b"{}")
        assert before["model_versions"]["online"] == "0"
        for _ in range(3):  # a few passes, plus duplicates that must be ignored
            for i in range(n):
                lab = {"event_id": f"e{i}", "label": i % 2, "timestamp": T0 + 8 * 86400}
                p.produce(names.topic("labels"), json.dumps(lab).encode(), f"e{i}".encode())
            p.produce(
                names.topic("labels"),
                json.dumps({"event_id": "unknown-event", "label": 1, "timestamp": T0}).encode(),
            )
            p.flush(10)
        version = poll(lambda: r.get(names.model_version("online")), 30, "a model snapshot")
        stats = poll(
            lambda: (
                (s := r.hgetall(names.learner_stats()))
                and int(s.get(b"learned", 0)) + int(s.get(b"duplicate", 0)) >= 3 * n
                and s
            ),
            30,
            "all labels handled",
        )
        assert int(stats[b"learned"]) == n
        poll(lambda: int(r.hget(names.learner_stats(), "unknown") or 0) >= 1, 30, "unknown")
        # The learner snapshots every 0.5 s: wait for a version that has learned before new
        # transactions go in (a CI run scored them with version 0 published before learning).
        version = poll(
            lambda: (v := r.get(names.model_version("online"))) not in (None, b"0") and v,
            30,
            "a learned model snapshot",
        )
        # New transactions are scored by the reloaded model: fraud-like ones score higher.
        for j, amount in ((1000, 500.0), (1001, 5.0)):
            p.produce(
                names.topic("transactions"), tx(j, card=f"n{j}", terminal="t9", amount=amount)
            )
        p.flush(10)
        hi = orjson.loads(poll(lambda: r.get(names.score("e1000")), 30, "e1000 scored"))
        lo = orjson.loads(poll(lambda: r.get(names.score("e1001")), 30, "e1001 scored"))
        assert hi["model_versions"]["online"] == lo["model_versions"]["online"] != "0"
        assert int(hi["model_versions"]["online"]) <= int(version.decode()) + 10
        assert hi["score"] > lo["score"]
        assert any(reason["feature"] == "amount" for reason in hi["reasons"])
        # The learned rows reach the offline store within a snapshot period, while the worker
        # runs (a stop that faust holds up waiting for in-flight labels may end in a kill).
        store = OfflineStore(settings.data_dir)
        (df,) = poll(
            lambda: len(d := store.read(0, 2e9)) >= n and (d,),
            30,
            "the learned rows in the offline store",
        )
    assert sorted(df["event_id"]) == sorted(f"e{i}" for i in range(n))
    assert (df.set_index("event_id").loc["e1", ["label", "amount"]] == [1, 500.0]).all()
