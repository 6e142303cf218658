"""The monitor end to end: simulator -> Kafka -> worker (scorer, learner, monitor) -> alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.simulator import GroupBias, SimConfig, TransactionSimulator
from tests.support.apiserver import running_api
from tests.support.simfeed import feed, read_alerts
from tests.support.workers import running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def monitor_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "label_delay_days": 1,
            "monitor_window_size": 1000,
            "monitor_window_s": 0.0,
            "monitor_label_window": 2500,  # ~400 events per age band
            "monitor_cooldown_s": 0.0,
            # 10-day worlds: a day's warm-up and a day's reference (30 + 7 by default)
            "monitor_warmup_days": 1.0,
            "monitor_reference_days": 1.0,
            # the young online model scores low: flag its top scores so decisions vary
            "review_threshold": 0.1,
        }
    )


def run(settings: Settings, tmp_path: Path, bias: GroupBias | None) -> list[dict[str, Any]]:
    sim = TransactionSimulator(
        SimConfig(
            seed=3,
            n_customers=300,
            n_terminals=600,
            n_days=14,  # three labeled windows: a young model may not be biased in the first
            label_delay_days=1,
            compromised_customers_per_day=2,  # enough frauds for the model to learn amounts
            bias=bias,
        )
    )
    with running_worker(settings, tmp_path / "w.log"):
        assert feed(settings, sim)["labels"] > 1000
    _log_fairness(settings)
    return [a for a in read_alerts(settings) if a["kind"] == "fairness"]


def _log_fairness(settings: Settings) -> None:
    """Print each fairness window's age-band gaps (shown when the test fails)."""
    r = redis.Redis.from_url(settings.redis_url or "")
    for raw in reversed(r.lrange(Names(settings.topic_prefix).monitor("fairness:history"), 0, -1)):
        rep = orjson.loads(raw)
        age = rep.get("attributes", {}).get("age_band", {})
        gaps = {
            k: (round(v["gap"], 3), round(v["ci_low"], 3), v["high"], v["low"])
            for k, v in age.get("intervals", {}).items()
        }
        print("fairness window", rep.get("window_end"), "age_band", gaps)
    r.close()


def test_group_bias_raises_a_fairness_alert(settings: Settings, tmp_path: Path) -> None:
    """The bias shows only once the young online model has learnt "far above the card's usual
    amount -> fraud", which depends on when the scorer reloads its snapshots. Over 10 days
    with ``spike_share`` 0.5 from day 0 (two labeled windows) it failed in CI and in 2 of 7
    local runs: the first window's gap was 0.005-0.08, and where it passed the best window's
    FPR interval cleared the 0.02 tolerance by 0.009-0.014. Over 14 days with 0.3 from day 0,
    2 of 2 runs cleared it by 0.012 and 0.013; from day 4 (as here), 4 of 4 runs cleared it in
    both later windows, the better one by 0.012, 0.034, 0.024 and 0.024."""
    s = monitor_settings(settings)
    # from day 4: the model has learnt what a card's usual amount is before the spikes start
    bias = GroupBias(
        attribute="age_band", group="65+", spike_share=0.3, mislabel_share=0.0, from_day=4
    )
    alerts = run(s, tmp_path, bias)
    assert alerts, "no fairness alert with an injected bias"
    a = alerts[0]
    assert a["subject"] == "age_band" and a["details"]["attribute"] == "age_band"
    assert "65+" in a["details"]["groups"]
    assert a["details"]["window_start"] < a["details"]["window_end"]
    # the metric and the figures: which rate, which groups, the value, its interval
    found = a["details"]["findings"]
    assert found and set(a["details"]["metrics"]) == {f["metric"] for f in found}
    for f in found:  # the whole interval past the threshold
        ratio = f["metric"].endswith("ratio")
        assert f["ci_high"] < f["threshold"] if ratio else f["ci_low"] > f["threshold"], f
    assert any("65+" in (f["high"], f["low"]) for f in found)


def test_no_bias_no_fairness_alert(settings: Settings, tmp_path: Path) -> None:
    got = run(monitor_settings(settings), tmp_path, None)
    assert got == [], [(a["message"], a["details"].get("findings")) for a in got]


def test_monitor_endpoints_answer(settings: Settings, tmp_path: Path) -> None:
    s = monitor_settings(settings).model_copy(
        update={"monitor_label_window": 1000, "monitor_window_size": 200}
    )
    with running_api(s) as api:
        for kind in ("drift", "fairness", "performance", "concept"):
            got = api.http.get(f"/v1/monitor/{kind}", headers=api.auth("reader"))
            assert got.status_code == 200 and got.json()["status"] == "no data yet"
        st = api.http.get("/v1/monitor/status", headers=api.auth("reader")).json()
        assert st["state"] == "no data yet" and st["message"].startswith("warming up")
        assert api.http.get("/v1/monitor/drift").status_code == 401
        sim = TransactionSimulator(
            SimConfig(seed=5, n_customers=200, n_terminals=400, n_days=4, label_delay_days=1)
        )
        with running_worker(s, tmp_path / "w.log"):
            feed(s, sim)
        drift = api.http.get("/v1/monitor/drift", headers=api.auth("reader")).json()
        assert drift["status"] == "ok"
        latest = drift["latest"]
        assert latest["window_start"] <= latest["window_end"]
        assert 0 <= latest["data"]["share_drifted"] <= 1 and latest["reference"]["source"]
        perf = api.http.get("/v1/monitor/performance?history=100", headers=api.auth("reader"))
        perf = perf.json()
        assert perf["status"] == "ok" and "combined" in perf["latest"]["models"]
        # performance estimated before labels, per judged window; realised once labels matured
        est = perf["estimated"]
        assert est["latest"] and est["latest"]["estimated"]["n"] == est["latest"]["n"]
        windows = [(w["window_kind"], w["window_index"]) for w in est["history"]]
        assert len(windows) == len(set(windows))  # one record per window
        realised = [w for w in est["history"] if w["source"] == "realised"]
        assert realised and all(w["realised"]["labeled"] > 0 for w in realised)
        assert all(w["precision"] == w["realised"]["precision"] for w in realised)
        fair = api.http.get("/v1/monitor/fairness", headers=api.auth("reader")).json()
        assert "age_band" in fair["latest"]["attributes"]
        st = api.http.get("/v1/monitor/status", headers=api.auth("reader")).json()
        assert st["state"] == "ready" and st["message"] == "ready", st
        assert api.http.post("/v1/monitor/reference", headers=api.auth("reader")).status_code == 403
        got = api.http.post("/v1/monitor/reference", headers=api.auth("root"))
        assert got.status_code == 202 and got.json()["status"] == "accepted"
        acts = api.http.get("/v1/monitor/actions", headers=api.auth("reader"))
        assert acts.status_code == 200 and isinstance(acts.json()["actions"], list)
