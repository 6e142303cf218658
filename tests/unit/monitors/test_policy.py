"""The monitoring policy (pure): alerts, actions, cooldowns, rollback, fairness, audit."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import numpy as np

from riverwatch.monitors.columns import FeatureDrift
from riverwatch.monitors.concept.detectors import DriftEvent
from riverwatch.monitors.fairness import FairnessCounts
from riverwatch.monitors.policy import Policy
from riverwatch.monitors.policy.config import PolicyConfig
from riverwatch.monitors.prediction import ScoreDrift
from riverwatch.monitors.windows import Window

HOUR = 3600.0


def win(end: float, start: float | None = None) -> Window[Any]:
    return Window("time", 0, end - HOUR if start is None else start, end, [], [])


def policy(**kw: Any) -> Policy:
    return Policy(PolicyConfig(**kw), clock=lambda: datetime(2026, 1, 2, tzinfo=UTC))


def ev(model: str, group: str = "*", direction: str = "up") -> DriftEvent:
    return DriftEvent(model, group, 100, 5.0, direction, 0.05, 0.3, "ADWIN")  # type: ignore[arg-type]


def found(
    share: float, drifted: tuple[str, ...] = ("amount",), important: bool = False
) -> FeatureDrift:
    """A window's per-feature drift: ``share`` of the features by weight drifted."""
    cols = list(drifted) if share > 0 else []
    return FeatureDrift([], cols, share, cols if important else [], None, 0, 100)


def test_data_drift_alone_warns_without_action() -> None:
    d = policy(drift_share_warn=0.3, drift_windows=1).features(
        win(HOUR), found(0.4, ("amount", "hour"))
    )
    assert [(a.kind, a.severity, a.subject) for a in d.alerts] == [("drift", "warning", "features")]
    assert d.controls == [] and d.audit == []
    a = d.alerts[0]
    assert a.details["window_start"] == "1970-01-01T00:00:00+00:00"
    assert a.details["window_end"] == "1970-01-01T01:00:00+00:00"
    assert a.details["drifted"] == ["amount", "hour"]


def test_a_drift_named_in_all_events_says_where_it_crossed_the_threshold_first() -> None:
    strongest = {"column": "amount", "segment": "*", "psi": 0.04, "wasserstein": 0.2}
    local = {**strongest, "segment": "region=south", "psi": 0.6}
    messages = []
    for best in (strongest, {**strongest, "drifted_in": ["age_band=65+"]}, local):
        drift = dataclasses.replace(found(0.6, ("amount",)), strongest=best)
        messages.append(policy(drift_windows=1).features(win(HOUR), drift).alerts[0].message)
    assert "strongest amount in all events (PSI 0.04, Wasserstein 0.20 std)" in messages[0]
    assert (
        "in all events (PSI 0.04, Wasserstein 0.20 std; past the threshold in age_band=65+)"
        in (messages[1])
    )
    assert "strongest amount in region=south (PSI 0.60" in messages[2]


def test_drift_severity_and_threshold() -> None:
    p = policy(drift_windows=1)
    assert p.features(win(HOUR), found(0.1)).alerts == []
    assert p.features(win(2 * HOUR), found(0.6)).alerts[0].severity == "warning"
    assert policy(drift_windows=1).features(win(HOUR), found(0.8)).alerts[0].severity == "critical"
    # an important feature alone is enough, whatever its share
    assert policy(drift_windows=1).features(win(HOUR), found(0.1, important=True)).alerts


def test_data_drift_must_persist_for_consecutive_windows_of_a_kind() -> None:
    p = policy(drift_windows=2, cooldown_s=0)
    shares = [0.6, 0.2, 0.6, 0.7, 0.9, 0.1]
    fired = [len(p.features(win(i * HOUR), found(s)).alerts) for i, s in enumerate(shares, 1)]
    assert fired == [0, 0, 0, 1, 1, 0]
    # a count window does not continue a streak of time windows
    q = policy(drift_windows=2, cooldown_s=0)
    assert q.features(win(HOUR), found(0.9)).alerts == []
    count = Window("count", 0, 0.0, 2 * HOUR, [], [])
    assert q.features(count, found(0.9)).alerts == []
    alert = q.features(win(3 * HOUR), found(0.9)).alerts[0]
    assert alert.details["windows_in_a_row"] == 2 and "2 windows in a row" in alert.message


def test_prediction_drift_warns_separately_once_it_persists() -> None:
    pred = ScoreDrift(0.5, 0.1, True, 0.2, 10, 1000, 1000, score="batch_score")
    calm = ScoreDrift(0.01, 0.01, False, 0.2, 10, 1000, 1000, score="batch_score")
    p = policy(cooldown_s=0)
    assert p.prediction(win(HOUR), pred).alerts == []  # one window: not yet
    assert p.prediction(win(2 * HOUR), calm).alerts == []  # and the streak is broken
    assert p.prediction(win(3 * HOUR), pred).alerts == []
    d = p.prediction(win(4 * HOUR), pred)
    assert [(a.kind, a.subject) for a in d.alerts] == [("drift", "score")]
    assert "the champion's score distribution drifted (PSI 0.500)" in d.alerts[0].message
    assert d.alerts[0].details["windows_in_a_row"] == 2


def test_cooldown_one_incident_one_alert_by_event_time() -> None:
    p = policy(cooldown_s=6 * HOUR, drift_windows=1)
    fired = [len(p.features(win(t * HOUR), found(0.5)).alerts) for t in range(1, 10)]
    assert fired == [1, 0, 0, 0, 0, 0, 1, 0, 0]
    assert p.suppressed == 7


def test_concept_drift_batch_requests_retrain_with_alert_and_audit() -> None:
    p = policy()
    d = p.concept(win(HOUR), [ev("combined")])
    assert [c.action for c in d.controls] == ["retrain"]
    assert d.controls[0].target == "batch" and d.controls[0].status == "requested"
    kinds = sorted(a.kind for a in d.alerts)
    assert kinds == ["performance", "retrain"]
    retrain = next(a for a in d.alerts if a.kind == "retrain")
    assert retrain.details["action"] == "retrain"
    assert retrain.details["window_end"] == "1970-01-01T01:00:00+00:00"
    assert list(p.audit) == d.audit
    assert d.audit[0]["trigger"]["finding"] == "concept_drift"
    assert d.audit[0]["request_id"] == d.controls[0].request_id


def test_concept_drift_online_requests_reset() -> None:
    d = policy().concept(win(HOUR), [ev("online")])
    assert [(c.action, c.target) for c in d.controls] == [("reset", "online")]


def test_group_drift_and_improvement_do_not_act() -> None:
    d = policy().concept(win(HOUR), [ev("batch", "age_band=65+"), ev("batch", direction="down")])
    assert d.controls == []
    assert [(a.subject, a.severity) for a in d.alerts] == [("batch/age_band=65+", "info")]


def test_retrain_requests_have_a_cooldown() -> None:
    p = policy(cooldown_s=6 * HOUR)
    assert len(p.concept(win(HOUR), [ev("batch")]).controls) == 1
    assert p.concept(win(2 * HOUR), [ev("combined")]).controls == []
    assert len(p.concept(win(8 * HOUR), [ev("batch")]).controls) == 1
    assert len(p.audit) == 2


def test_performance_drop_requests_retrain_only_when_matured() -> None:
    p = policy(perf_drop=0.1, perf_windows=1)  # one window acts (persistence: its own test)
    for t, ap in enumerate([0.6, 0.62, 0.58], start=1):
        assert (
            p.perf(win(t * HOUR), "batch", {"ap": ap}, provisional=False, champion="b1").alerts
            == []
        )
    assert p.perf(win(4 * HOUR), "batch", {"ap": 0.1}, provisional=True, champion="b1").alerts == []
    d = p.perf(win(5 * HOUR), "batch", {"ap": 0.3}, provisional=False, champion="b1")
    assert [c.action for c in d.controls] == ["retrain"]
    perf = next(a for a in d.alerts if a.kind == "performance")
    assert perf.severity == "critical"  # 0.3 is more than two drops below 0.6
    assert abs(perf.details["baseline"] - 0.6) < 1e-9


def test_undefined_metric_is_ignored() -> None:
    p = policy()
    assert p.perf(win(HOUR), "online", {"ap": None}, provisional=False).alerts == []
    assert p.perf(win(HOUR), "online", {"ap": float("nan")}, provisional=False).alerts == []


def test_rollback_when_new_champion_underperforms_predecessor() -> None:
    p = policy(rollback_margin=0.02)
    p.perf(win(HOUR), "batch", {"ap": 0.6}, provisional=False, champion="b1")
    d = p.perf(win(2 * HOUR), "batch", {"ap": 0.5}, provisional=False, champion="b2")
    assert [(c.action, c.target) for c in d.controls] == [("rollback", "b2")]
    assert d.audit[0]["trigger"]["predecessor"] == "b1"
    # judged once: the next window of b2 does not roll back again
    assert (
        p.perf(win(3 * HOUR), "batch", {"ap": 0.5}, provisional=False, champion="b2").controls == []
    )


def test_no_rollback_when_new_champion_holds_up() -> None:
    p = policy()
    p.perf(win(HOUR), "batch", {"ap": 0.6}, provisional=False, champion="b1")
    d = p.perf(win(2 * HOUR), "batch", {"ap": 0.7}, provisional=False, champion="b2")
    assert d.controls == [] and d.alerts == []


def test_first_champion_is_not_judged_against_nothing() -> None:
    p = policy()
    p.perf(win(HOUR), "batch", {"ap": 0.6}, provisional=False, champion=None)
    assert (
        p.perf(win(2 * HOUR), "batch", {"ap": 0.4}, provisional=False, champion="b1").controls == []
    )


def _fairness(biased: bool) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    fc = FairnessCounts()
    for i in range(4000):
        old = i % 2 == 0
        fraud = rng.random() < 0.02
        flagged = fraud or rng.random() < (0.25 if old and biased else 0.03)
        groups = {"age_band": "65+" if old else "25-34", "region": f"r{i % 3}"}
        fc.update(groups, fraud, flagged)
    return fc.report(n_boot=300)


def test_fairness_alert_names_attribute_and_groups() -> None:
    d = policy().fairness(win(HOUR), _fairness(True))
    assert [(a.kind, a.subject) for a in d.alerts] == [("fairness", "age_band")]
    a = d.alerts[0]
    assert a.details["attribute"] == "age_band"
    assert a.details["groups"] == ["25-34", "65+"]
    assert "65+" in a.message and "age_band" in a.message
    assert a.details["window_start"] and a.details["window_end"]


def test_no_fairness_alert_without_significant_gap() -> None:
    assert policy().fairness(win(HOUR), _fairness(False)).alerts == []


def test_alert_ids_are_deterministic_for_replays() -> None:
    a = policy(drift_windows=1).features(win(HOUR), found(0.5)).alerts[0].alert_id
    b = policy(drift_windows=1).features(win(HOUR), found(0.5)).alerts[0].alert_id
    assert a == b


def test_noisy_drop_within_its_confidence_bound_does_not_retrain() -> None:
    """A window whose AP falls below the baseline only by chance (its bootstrap upper bound
    is still above the limit) neither alerts nor retrains; it joins the baseline instead."""
    p = policy(perf_drop=0.1, perf_windows=1)
    for t in (1, 2, 3):
        p.perf(win(t * HOUR), "batch", {"ap": 0.6, "ap_upper": 0.8}, provisional=False)
    noisy = p.perf(win(4 * HOUR), "batch", {"ap": 0.4, "ap_upper": 0.65}, provisional=False)
    assert noisy.alerts == [] and noisy.controls == []
    real = p.perf(win(5 * HOUR), "batch", {"ap": 0.2, "ap_upper": 0.35}, provisional=False)
    assert [c.action for c in real.controls] == ["retrain"]
    assert real.audit[0]["trigger"]["upper_bound"] == 0.35
    # the noisy window entered the baseline: (0.6 + 0.6 + 0.4) / 3
    assert abs(real.audit[0]["trigger"]["baseline"] - 1.6 / 3) < 1e-9
    assert "upper bound 0.350" in real.alerts[0].message


def test_rollback_needs_the_bound_below_the_predecessor_too() -> None:
    p = policy(rollback_margin=0.02)
    p.perf(win(HOUR), "batch", {"ap": 0.6}, provisional=False, champion="b1")
    d = p.perf(
        win(2 * HOUR), "batch", {"ap": 0.5, "ap_upper": 0.7}, provisional=False, champion="b2"
    )
    assert d.controls == []
    p.perf(win(3 * HOUR), "batch", {"ap": 0.6}, provisional=False, champion="b3")
    d = p.perf(
        win(4 * HOUR), "batch", {"ap": 0.3, "ap_upper": 0.5}, provisional=False, champion="b4"
    )
    assert [(c.action, c.target) for c in d.controls] == [("rollback", "b4")]


def test_same_model_windows_rarely_look_like_a_drop() -> None:
    """Windows of one unchanged model (2,000 events, 1% fraud) through performance() and the
    policy: the AP-alone rule requests retrains by chance; with the bootstrap bound none come,
    while a model that lost its signal is still caught."""
    from riverwatch.monitors.performance import performance

    rng = np.random.default_rng(7)

    def window(signal: float) -> dict[str, Any]:
        y = (rng.random(2000) < 0.01).astype(int)
        s = signal * y * rng.random(2000) + rng.random(2000)
        cards = [f"c{i}" for i in range(2000)]
        rep = performance(np.zeros(2000), s, y, cards, as_of=1.0, horizon_s=0.0, threshold=0.5)
        return rep.to_dict()

    one = {"perf_drop": 0.1, "cooldown_s": 0, "perf_windows": 1}  # the bound alone, per window
    raw, bounded = policy(**one), policy(**one)
    fired_raw = fired = 0
    for i in range(40):
        rep = window(2.0)
        fired_raw += len(
            raw.perf(win(i * HOUR), "combined", {"ap": rep["ap"]}, provisional=False).controls
        )
        fired += len(bounded.perf(win(i * HOUR), "combined", rep, provisional=False).controls)
    assert fired_raw >= 3 and fired == 0, (fired_raw, fired)
    lost = bounded.perf(win(41 * HOUR), "combined", window(0.0), provisional=False)
    assert [c.action for c in lost.controls] == ["retrain"]


def test_performance_drop_must_persist_for_perf_windows() -> None:
    # Issue 14: in the scenario benchmark's no-change runs (seeds 5, 8, 9) one label window's
    # AP, 95 % upper bound included, fell 0.1 below the baseline by chance and asked for a
    # retrain. With perf_windows=2 one such window is not enough; two in a row are, a
    # healthy window in between starts the count again, and the count survives a restart.
    def drop(p: Policy, t: int, ap: float) -> list[str]:
        d = p.perf(win(t * HOUR), "batch", {"ap": ap}, provisional=False, champion="b1")
        return [c.action for c in d.controls]

    p = policy(perf_drop=0.1, perf_windows=2, cooldown_s=0)
    for t, ap in enumerate([0.6, 0.62, 0.58], start=1):
        assert drop(p, t, ap) == []
    assert drop(p, 4, 0.3) == []  # one window: noise as far as the policy knows
    assert drop(p, 5, 0.6) == []  # healthy again: the streak ends
    assert drop(p, 6, 0.3) == []
    q = policy(perf_drop=0.1, perf_windows=2, cooldown_s=0)
    q.restore(p.state())
    assert drop(q, 7, 0.3) == ["retrain"]  # the second in a row
    assert policy(perf_drop=0.1).c.perf_windows == 2  # RIVERWATCH_MONITOR_PERF_WINDOWS' default


def test_a_concept_drift_retrain_is_followed_up_once_its_labels_have_matured() -> None:
    # test_e2e_loop failed so: a concept drift detected on the change's first labels asked for
    # a retrain whose challenger could only train on the labels matured by then (before the
    # change); it was promoted, and no detector fired again, so no champion ever saw the new
    # concept. The follow-up asks again once the labels since the detection have matured.
    later = 3 * 24 * HOUR
    p = policy(followup_s=later)
    first = p.concept(win(HOUR), [ev("combined")])
    assert [c.action for c in first.controls] == ["retrain"]
    assert p.followup(win(HOUR + later - 1)).controls == []  # not yet
    restored = policy(followup_s=later)
    restored.restore(p.state())  # a restarted monitor keeps the follow-up due
    for q in (p, restored):
        due = q.followup(win(HOUR + later))
        assert [(c.action, c.target) for c in due.controls] == [("retrain", "batch")]
        assert due.audit[0]["trigger"]["finding"] == "concept_followup"
        assert q.followup(win(HOUR + 2 * later)).controls == []  # once
    online = policy(followup_s=later)
    online.concept(win(HOUR), [ev("online")])  # a reset of the online model needs none
    assert online.followup(win(HOUR + later)).controls == []
    off = policy()  # followup_s 0: no follow-up
    off.concept(win(HOUR), [ev("combined")])
    assert off.followup(win(HOUR + later)).controls == []
