"""The learning loop and the monitor end to end, through Kafka, a worker, Redis and the API.

Simulated days go in (labels one day late); a first retrain makes a champion; from day
``DRIFT_DAY`` a fraud pattern the champion never saw appears (card testing, see SimConfig).
The system must, on its own: raise a drift alert, request a retrain (policy -> ``control``),
train a challenger (trainer) and promote it once it beats the champion on a later hold-out,
all of it visible through ``/v1/alerts``, ``/v1/models`` and ``/v1/monitor/actions``.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.simulator import SimConfig, TransactionSimulator
from riverwatch.stores.registry import Registry
from tests.support.apiserver import Api, running_api
from tests.support.simfeed import feed
from tests.support.topics import Topics
from tests.support.workers import poll, running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The 30-day card and terminal features only settle after 30 days: the first champion (and
# so the drift reference, its training window) comes after that, from days 30-33.
FIRST_TRAIN_DAY = 35
DRIFT_DAY = 39
N_DAYS = 47


def loop_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "label_delay_days": 1,
            "train_days": 3,
            "holdout_days": 2,
            "monitor_window_size": 0,
            "monitor_window_s": 86_400.0,
            "monitor_label_window": 1000,
            "monitor_cooldown_s": 86_400.0,  # one alert per subject and simulated day
            # The derived KPI series get a point per simulated minute, 1,440 a day here; their
            # forecasts (GIL-bound) would slow every other thread of the worker. Short ones.
            "forecast_horizon": 6,
        }
    )


def get(api: Api, path: str, **params: Any) -> Any:
    got = api.http.get(path, params=params, headers=api.auth("reader"))
    assert got.status_code == 200, got.text
    return got.json()


def answer(topics: Topics, request_id: str, timeout: float = 120) -> dict[str, Any]:
    """The trainer's answer (status done or failed) to ``request_id``."""
    deadline = time.monotonic() + timeout
    while True:
        for status in ("done", "failed"):
            with contextlib.suppress(AssertionError):
                return topics.wait("control", {"request_id": request_id, "status": status}, 1)
        assert time.monotonic() < deadline, f"no answer to {request_id}"


@pytest.mark.timeout(900)  # ~4 min alone: 47 simulated days, each fed and waited for
def test_drift_raises_an_alert_and_a_retrain_whose_challenger_is_promoted(
    settings: Settings, tmp_path: Path
) -> None:
    s = loop_settings(settings)
    sim = TransactionSimulator(
        SimConfig(
            seed=21,
            n_customers=250,
            n_terminals=500,
            n_days=N_DAYS,
            label_delay_days=1,
            compromised_customers_per_day=1,
            drift_day=DRIFT_DAY,
            drift_customers_per_day=15,
        )
    )
    day = 86_400
    t0 = sim.config.start.timestamp()
    drift_start = t0 + DRIFT_DAY * day
    names = Names(s.topic_prefix)
    registry = Registry(redis_client(redis_config(s)), names, s.data_dir)
    topics = Topics(s)
    with running_api(s) as api, running_worker(s, tmp_path / "worker.log"):

        def after_day(d: int) -> None:
            if d != FIRST_TRAIN_DAY:
                return
            for _ in range(10):  # a retrain the monitor asked for may be running: ask again
                got = api.http.post(
                    "/v1/models/retrain", json={"reason": "first model"}, headers=api.auth("root")
                )
                assert got.status_code == 202, got.text
                if answer(topics, got.json()["request_id"])["status"] == "done":
                    break
            else:
                raise AssertionError("the trainer stayed busy")
            assert registry.champion() is not None  # this challenger or an earlier one

        sent = feed(s, sim, after_day)
        assert sent["labels"] > 10_000, sent

        def promoted_after_drift() -> Any:
            champ = registry.champion()
            return champ if champ is not None and champ.data_end > drift_start else None

        champion = poll(promoted_after_drift, 180, "a champion trained on the drifted days")
        models = get(api, "/v1/models")

        def announced() -> list[dict[str, Any]]:
            # The registry changes before the trainer's alert has passed the dispatcher.
            items: list[dict[str, Any]] = get(api, "/v1/alerts", limit=1000)["items"]
            said = any(a["kind"] == "retrain" and a["subject"] == champion.name for a in items)
            return items if said else []

        alerts = poll(announced, 60, f"the retrain alert about {champion.name}")
        actions = get(api, "/v1/monitor/actions")["actions"]
        with contextlib.suppress(AssertionError):  # read every control record so far
            topics.wait("control", {"request_id": "none"}, 5)
        drift_history = [
            orjson.loads(b) for b in api.redis.lrange(names.monitor("drift:history"), 0, -1)
        ]
    topics.c.close()

    def when(iso: str) -> float:
        return datetime.fromisoformat(iso).timestamp()

    # 1. a drift alert about the drifted days, none about the calm days before them once the
    #    reference is a champion's training window (the first days warm the 30-day features up)
    drift = [a for a in alerts if a["kind"] == "drift" and a["subject"] == "features"]
    calm_from = t0 + (FIRST_TRAIN_DAY + 1) * day
    calm = [a for a in drift if calm_from <= when(a["details"]["window_start"]) < drift_start]
    after = [a for a in drift if when(a["details"]["window_start"]) >= drift_start]
    shares = [  # windows of the warm-up have a status and no figures
        (h["window_start"], round(h["data"]["share_drifted"], 2), h["reference"]["source"])
        if h.get("data")
        else (h["window_start"], h["status"]["message"])
        for h in reversed(drift_history)
    ]
    assert calm == [], shares
    assert after, shares
    assert {"amount", "card_n_1d"} & set(after[0]["details"]["drifted"])

    # 2. the policy asked for a retrain on its own, for a window of drifted days, and said so
    requests = [
        a
        for a in actions
        if a["action"] == "retrain"
        and a["source"] == "monitor"
        and when(a["window_end"]) > drift_start
    ]
    assert requests, actions
    said = {a["details"].get("request_id") for a in alerts if a["kind"] == "retrain"}
    assert {r["request_id"] for r in requests} <= said

    # 3. the trainer answered one of those requests with a challenger that won its hold-out
    outcome = next(
        c
        for c in topics.seen["control"]
        if c.get("status") == "done" and c["details"].get("challenger_name") == champion.name
    )
    assert outcome["request_id"].startswith("monitor-retrain-"), outcome
    assert outcome["details"]["promoted"] is True and "beats champion" in outcome["reason"]
    assert champion.holdout_start > drift_start - day  # judged on days with the new pattern

    # 4. all of it visible through the API
    assert models["champion"]["name"] == champion.name
    steps = [(e["action"], e["name"]) for e in models["audit"]]
    assert ("register", champion.name) in steps and ("promote", champion.name) in steps
    assert any(
        a["kind"] == "retrain" and a["subject"] == champion.name and "promoted" in a["message"]
        for a in alerts
    )
