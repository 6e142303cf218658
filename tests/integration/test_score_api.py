"""POST /v1/score gives what the workers give: same features, same models, no skew."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from riverwatch.core.settings import Settings
from tests.support.apiserver import running_api
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration

T0 = 1_767_225_600


def tx(i: int, card: str, amount: float, minutes: int) -> dict[str, object]:
    return {
        "event_id": f"s{i}",
        "timestamp": T0 + minutes * 60,
        "card_id": card,
        "terminal_id": "term-a",
        "amount": amount,
    }


def test_sync_score_equals_the_stream_score_and_is_read_only(
    settings: Settings, tmp_path: Path
) -> None:
    with running_worker(settings, tmp_path / "w.log"), running_api(settings) as api:
        history = [tx(i, "card-a", 20.0 + i, i) for i in range(5)]
        r = api.http.post("/v1/transactions", json=history, headers=api.auth("writer"))
        assert r.status_code == 202
        poll(lambda: api.redis.get(api.names.score("s4")), 30, "the history to be scored")

        new = tx(99, "card-a", 300.0, 10)
        first = api.http.post("/v1/score", json=new, headers=api.auth("reader"))
        assert first.status_code == 200, first.text
        again = api.http.post("/v1/score", json=new, headers=api.auth("reader"))
        # Read-only: scoring twice changes nothing, and nothing was stored or produced.
        assert again.json()["score"] == first.json()["score"]
        assert api.redis.get(api.names.score("s99")) is None

        forbidden = api.http.post("/v1/score?ingest=true", json=new, headers=api.auth("reader"))
        assert forbidden.status_code == 403 and "ingest" in forbidden.json()["detail"]
        sync = api.http.post("/v1/score?ingest=true", json=new, headers=api.auth("root")).json()
        stored = orjson.loads(poll(lambda: api.redis.get(api.names.score("s99")), 30, "s99"))
        for field in ("score", "online_score", "batch_score", "decision", "model_versions"):
            assert stored[field] == pytest.approx(sync[field], abs=1e-12), field
        row = orjson.loads(api.redis.get(api.names.feature_row("s99")) or b"{}")
        assert row["x"][4] == 6.0  # the sixth transaction of card-a that day

        bad = api.http.post(
            "/v1/score", json={"event_id": "x", "amount": -1}, headers=api.auth("reader")
        )
        assert bad.status_code == 422
        fields = {e["field"] for e in bad.json()["detail"]["errors"]}
        assert {"amount", "card_id", "timestamp"} <= fields

        lat = []
        for i in range(200):
            t = time.perf_counter()
            assert (
                api.http.post(
                    "/v1/score", json=tx(1000 + i, f"c{i}", 10.0, i), headers=api.auth("reader")
                ).status_code
                == 200
            )
            lat.append(time.perf_counter() - t)
        print(
            f"POST /v1/score over HTTP: p50 {np.percentile(lat, 50) * 1000:.1f} ms, "
            f"p99 {np.percentile(lat, 99) * 1000:.1f} ms (n=200)"
        )


def test_amounts_that_overflow_a_cards_sums_never_fail_open(
    settings: Settings, tmp_path: Path
) -> None:
    # Score safely even for an amount a validator bound would refuse (if the bound were off).
    if "max_amount" in Settings.model_fields:
        settings = settings.model_copy(update={"max_amount": 1.7e308})
    with (
        running_worker(settings, tmp_path / "w.log") as worker,
        running_api(settings) as api,
    ):
        r = api.http.post(
            "/v1/transactions", json=tx(1, "card-x", 1e308, 0), headers=api.auth("writer")
        )
        assert r.status_code == 202, r.text
        poll(lambda: api.redis.get(api.names.score("s1")), 30, "the first huge amount's score")
        # A second amount near the float maximum on the same card: its sums would overflow.
        second = tx(2, "card-x", 1e308, 1)
        res = api.http.post("/v1/score", json=second, headers=api.auth("reader"))
        assert res.status_code == 200, res.text
        body = res.json()
        assert isinstance(body["score"], float) and 0.0 <= body["score"] <= 1.0, body
        assert body["decision"] in ("approve", "review", "decline")
        assert all(isinstance(x["contribution"], float) for x in body["reasons"])
        # The stream scorer takes it too, and lives on.
        r = api.http.post("/v1/score?ingest=true", json=second, headers=api.auth("root"))
        assert r.status_code == 200, r.text
        stored = orjson.loads(poll(lambda: api.redis.get(api.names.score("s2")), 30, "s2"))
        assert stored["score"] == pytest.approx(body["score"], abs=1e-12)
        assert worker.poll() is None
