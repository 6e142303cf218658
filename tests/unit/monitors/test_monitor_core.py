"""The monitor's pure core: warm-up and reference, per-feature drift by segment, volume,
flagged share, and the simulator's shifts that the scenario benchmark injects."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from riverwatch.models.features import FEATURE_INDEX, FEATURE_NAMES
from riverwatch.monitors.columns import ColumnDrift
from riverwatch.monitors.concept import ConceptDriftMonitor
from riverwatch.monitors.core import MonitorCore
from riverwatch.monitors.core.config import CoreConfig
from riverwatch.monitors.policy.config import PolicyConfig
from riverwatch.monitors.prediction import ScoreDriftMonitor
from riverwatch.monitors.quality import VolumeMonitor
from riverwatch.simulator import Shift, SimConfig
from riverwatch.simulator.days import DayGenerator
from riverwatch.simulator.population import build_population

DAY = 86_400.0
REGIONS = ("north", "south", "east", "west")


def stream(days: int, per_day: int, shift_from: float | None, seed: int = 0) -> list[dict]:
    """Rows whose 30-day count feature fills up over 30 days (as the real one does), and
    whose amount rises by half for region=south from ``shift_from`` on."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(days):
        for i in range(per_day):
            t = d * DAY + (i + 0.5) * DAY / per_day
            region = REGIONS[int(rng.integers(4))]
            x = rng.lognormal(0, 0.5, len(FEATURE_NAMES))
            x[FEATURE_INDEX["card_n_30d"]] = rng.poisson(2 * min(d + 1, 30))
            if shift_from is not None and t >= shift_from and region == "south":
                x[FEATURE_INDEX["amount"]] *= 1.5
            score = float(rng.beta(1, 30))
            decision = "review" if score >= 0.5 else "approve"
            rows.append({
                "x": x.tolist(), "score": score, "decision": decision,
                "groups": {"region": region}, "epoch": t,
            })  # fmt: skip
    return rows


def core() -> MonitorCore:
    cols = ("amount", "card_n_30d", "card_mean_7d")
    cfg = CoreConfig(
        features=FEATURE_NAMES,
        drift_columns=cols,
        window_size=0,
        warmup_s=30 * DAY,
        reference_s=5 * DAY,
        policy=PolicyConfig(cooldown_s=0, drift_windows=2),
    )
    return MonitorCore(cfg, ConceptDriftMonitor())


def test_nothing_is_judged_while_warming_up_and_no_alert_without_change() -> None:
    mon = core()
    rows = stream(50, 1200, None)
    before = mon.scores(rows[: 20 * 1200])
    status = mon.status()
    assert status["state"] == "warming up"
    assert status["message"] == "warming up (reference from 1970-01-31T00:00:36+00:00)"
    after = mon.scores(rows[20 * 1200 :])
    # card_n_30d grows for 30 days: judged against day 0 it would drift on every window
    assert before.alerts == [] and after.alerts == []
    assert mon.status()["state"] == "ready" and mon.status()["source"] == "warm-up"


def test_a_shift_of_one_feature_for_one_group_is_named_with_its_segment() -> None:
    mon = core()
    alerts = []
    for r in stream(45, 2000, shift_from=40 * DAY):
        alerts += mon.scores([r]).alerts
    assert alerts and {(a.kind, a.subject) for a in alerts} == {("drift", "features")}
    a = alerts[0]
    assert a.details["drifted"] == ["amount"]
    assert a.details["strongest"]["segment"] == "region=south"
    assert "region=south" in a.message and "PSI" in a.message
    # at the end of the second daily window after the change (two in a row needed)
    assert pd.Timestamp(a.details["window_end"]).timestamp() == 42 * DAY


def test_restart_collects_a_new_reference_from_then() -> None:
    mon = core()
    mon.scores(stream(37, 600, None))
    assert mon.ready
    mon.restart(40 * DAY)
    assert not mon.ready
    assert mon.status()["reference_from"] == "1970-02-10T00:00:00+00:00"


def test_column_drift_quiet_on_the_same_distribution() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 8000), "n": rng.poisson(3, 8000)})
    groups = [{"g": str(i % 4)} for i in range(8000)]
    mon = ColumnDrift(ref, groups)
    for _ in range(20):
        cur = pd.DataFrame({"a": rng.normal(0, 1, 3000), "n": rng.poisson(3, 3000)})
        res = mon.compare(cur, [{"g": str(i % 4)} for i in range(3000)])
        assert res.drifted == [] and res.segments_judged == 5


def _payments(
    rng: np.random.Generator, n: int, factor: float, where: tuple[str, str] | None
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Amounts and a ratio feature for ``n`` payments in regions and five unequal age bands
    (the smallest a tenth of the events), multiplied by ``factor`` for every payment
    (``where`` None) or for one group's."""
    ages = ("18-24", "25-34", "35-49", "50-64", "65+")
    region = rng.choice(4, n)
    age = rng.choice(5, n, p=[0.1, 0.25, 0.3, 0.25, 0.1])
    groups = [{"region": REGIONS[r], "age_band": ages[a]} for r, a in zip(region, age, strict=True)]
    hit = np.array([where is None or g[where[0]] == where[1] for g in groups])
    k = np.where(hit, factor, 1.0)
    cols = {"amount": rng.lognormal(3.5, 0.8, n) * k, "ratio": rng.gamma(4, 0.25, n) * k}
    return pd.DataFrame(cols), groups


def test_a_shift_of_every_event_is_named_in_all_events_not_in_a_chance_segment() -> None:
    # Each segment shows a shift of every payment as well as the whole does; before, the
    # finding named the (column, segment) of the largest PSI, mostly a small segment's
    # (noisier, biased upwards), on 40 of 40 of these windows
    named = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        mon = ColumnDrift(*_payments(rng, 5000, 1.0, None))
        found = mon.compare(*_payments(rng, 3000, 1.3, None))
        assert found.drifted == ["amount", "ratio"]
        named.append(found.strongest and found.strongest["segment"])
        local = mon.compare(*_payments(rng, 3000, 1.5, ("region", "south")))
        assert local.strongest and local.strongest["segment"] == "region=south"
    assert named == ["*"] * 40


def test_a_segments_shift_that_all_events_bins_cannot_show_is_still_named() -> None:
    # 8% of the payments (tier=vip) have values within half a unit, all inside one of all
    # events' decile bins (30%-40%), and they move within it: plain on the segment's own bins,
    # nothing on all events'; the rest of the events did not move, so the shift is the vip's
    rng = np.random.default_rng(5)

    def values(n: int, low: float) -> tuple[pd.DataFrame, list[dict[str, str]]]:
        vip = rng.random(n) < 0.08
        x = np.where(vip, rng.uniform(low, 33.5, n), rng.uniform(0.0, 100.0, n))
        return pd.DataFrame({"x": x}), [{"tier": "vip" if v else "standard"} for v in vip]

    mon = ColumnDrift(*values(20_000, 33.0))
    found = mon.compare(*values(8000, 33.3))
    assert found.columns[0].drifted is False and found.strongest is not None
    assert found.strongest["segment"] == "tier=vip"


def test_volume_drop_of_one_segment_and_not_otherwise() -> None:
    ref = [{"region": r} for r in REGIONS for _ in range(1000)]
    vm = VolumeMonitor(ref, span_s=4 * DAY)
    same = [{"region": r} for r in REGIONS for _ in range(240)]
    assert vm.compare(same, span_s=DAY).drops == []
    east_silent = [g for g in same if g["region"] != "east"]
    assert [d["segment"] for d in vm.compare(east_silent, span_s=DAY).drops] == ["region=east"]


def test_flagged_share_rise_is_prediction_drift() -> None:
    rng = np.random.default_rng(0)
    ref = np.where(rng.random(20000) < 0.01, 0.9, 0.02)
    mon = ScoreDriftMonitor(ref, threshold=0.5)
    assert not mon.compare(np.where(rng.random(3000) < 0.01, 0.9, 0.02)).flagged_drifted
    more = mon.compare(np.where(rng.random(3000) < 0.03, 0.9, 0.02))
    assert more.flagged_drifted and more.flagged > 2 * more.flagged_reference


def test_simulator_shifts_change_only_what_they_say() -> None:
    base = SimConfig(seed=4, n_customers=400, n_terminals=800, n_days=6)
    pop = build_population(400, 800, 5.0, 4)
    south = pop.in_group("region", "south")

    def days(cfg: SimConfig) -> list:
        gen = DayGenerator(cfg, pop)
        return [gen.day(d) for d in range(6)]

    plain = days(base)
    spend = days(
        SimConfig(**{**base.__dict__, "shifts": (Shift("amount", 3, 2.0, "region", "south"),)})
    )
    for d in range(6):
        same = np.array_equal(plain[d].amount, spend[d].amount)
        assert same == (d < 3)
        if d >= 3:  # only the group's legitimate amounts moved
            moved = plain[d].amount != spend[d].amount
            assert south[plain[d].cust[moved]].all()
    out = days(
        SimConfig(
            **{
                **base.__dict__,
                "shifts": (Shift("outage", 2, attribute="region", group="south", days=2),),
            }
        )
    )
    assert [bool(south[o.cust].any()) for o in out] == [True, True, False, False, True, True]
    ramp = Shift("amount", 10, 1.6, ramp_days=4)
    assert [ramp.strength(d) for d in (9, 10, 11, 13, 20)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    more = days(SimConfig(**{**base.__dict__, "shifts": (Shift("fraud", 0, 5.0),)}))
    assert sum((m.scenario > 0).sum() for m in more) > 2 * sum(
        (p.scenario > 0).sum() for p in plain
    )


def test_label_windows_of_the_warm_up_are_shown_but_not_judged() -> None:
    mon = core()
    stored: list[str] = []
    mon.store = lambda kind, result: stored.append(kind)
    rows = stream(3, 2000, None)
    mon.scores(rows)
    # every label wrong: judged, it would be a performance drop and a fairness gap
    out = mon.labels([(r, 1, float(r["epoch"]) + DAY) for r in rows], None)
    assert out.alerts == [] and out.controls == []
    assert "performance" in stored and "fairness" in stored
    assert mon.concept.report() == []  # no error stream fed before the reference's start


def test_judged_windows_carry_a_performance_estimate_before_labels() -> None:
    mon = core()
    results: list[dict] = []
    mon.store = lambda kind, result: results.append(result) if kind == "drift" else None
    mon.scores(stream(38, 1000, None))
    judged = [r for r in results if r.get("estimated")]
    assert judged and all(r["status"]["state"] == "ready" for r in judged)
    est = judged[-1]["estimated"]
    assert est["n"] > 900 and est["expected_frauds"] > 0 and est["recall"] is not None


def test_a_monitor_restarted_after_its_reference_period_collects_a_new_one() -> None:
    """A restart loses the reference rows (they are in memory) while the first event's time is
    kept (Redis): past the reference period the monitor must collect a new reference instead
    of warming up for ever."""
    mon = core()
    mon.begin(0.0)  # as a restarted monitor does: the first event was long ago
    mon.scores(stream(50, 600, None)[40 * 600 :])  # days 40-49 only
    status = mon.status()
    assert status["state"] == "ready", status


def test_an_online_reset_moves_only_the_score_reference() -> None:
    mon = core()
    rows = stream(45, 2000, shift_from=40 * DAY)
    mon.scores(rows[: 39 * 2000])
    assert mon.ready and mon.scores_ref is not None
    features = mon.features
    mon.restart_scores(39 * DAY)
    assert mon.ready and mon.features is features  # the inputs are still judged
    assert mon.scores_ref is None
    until = pd.Timestamp(mon.status()["scores_reference_until"]).timestamp()
    assert until == 39 * DAY + mon.c.reference_s
    alerts = []
    for r in rows[39 * 2000 :]:
        alerts += mon.scores([r]).alerts
    assert {(a.kind, a.subject) for a in alerts} == {("drift", "features")}
    assert mon.scores_ref is not None and "scores_reference_until" not in mon.status()


def scored(rows: list[dict], served: float, champion: float | None, seed: int = 1) -> list[dict]:
    """``rows`` with a served (combined) score of mean ``served`` and a champion's score of
    mean ``champion`` (None: no champion scored them)."""
    rng = np.random.default_rng(seed)
    out = []
    for r in rows:
        s = float(rng.beta(1, 1 / served - 1))
        b = None if champion is None else float(rng.beta(1, 1 / champion - 1))
        out.append({**r, "score": s, "batch_score": b, "decision": "approve"})
    return out


def test_prediction_drift_reads_the_champions_scores_not_a_learning_online_model() -> None:
    # The served score halves after the reference (an online model that keeps learning, in
    # a stream that does not change): no score drift while the champion's scores hold; a
    # shift of the champion's scores is one, named as the champion's.
    rows = stream(45, 600, None)
    ref, after = rows[: 38 * 600], rows[38 * 600 :]
    stored: list[dict] = []
    quiet = MonitorCore(core().c, ConceptDriftMonitor(), store=lambda kind, res: stored.append(res))
    quiet.scores(scored(ref, 0.04, 0.03))
    assert quiet.ready and quiet.scores_ref is not None
    assert quiet.scores_ref.key == "batch_score"
    calm = quiet.scores(scored(after, 0.02, 0.03, seed=2)).alerts
    assert [a for a in calm if a.subject == "score"] == []
    judged = [r["prediction"] for r in stored if r.get("prediction")]
    assert len(judged) >= 8 and max(p["psi"] for p in judged) < 0.1
    # (the served score's flagged share is still the served one's)
    assert all(p["score"] == "batch_score" for p in judged)

    moved = MonitorCore(core().c, ConceptDriftMonitor())
    moved.scores(scored(ref, 0.04, 0.03))
    alerts = moved.scores(scored(after, 0.04, 0.08, seed=2)).alerts
    hit = [a for a in alerts if a.subject == "score"]
    assert hit and hit[0].message.startswith("the champion's score distribution drifted")
    assert hit[0].details["score"] == "batch_score"


def test_prediction_drift_reads_the_served_score_without_a_champion() -> None:
    rows = stream(45, 600, None)
    mon = MonitorCore(core().c, ConceptDriftMonitor())
    mon.scores(scored(rows[: 38 * 600], 0.04, None))
    assert mon.scores_ref is not None and mon.scores_ref.key == "score"
    alerts = mon.scores(scored(rows[38 * 600 :], 0.02, None, seed=2)).alerts
    hit = [a for a in alerts if a.subject == "score"]
    assert hit and hit[0].message.startswith("the combined score distribution drifted")


def sprees(
    rows: list[dict], cards_per_day: dict[int, int], spree: int, seed: int = 3
) -> list[dict]:
    """``rows`` (600 a day) with ``cards_per_day[d]`` cards flagged ``spree`` times each on day
    ``d`` (a compromised card's spree: score 0.9, sent to review); every other event its own
    card's, unflagged."""
    rng = np.random.default_rng(seed)
    out = [{**r, "card_id": f"c{i}", "batch_score": None} for i, r in enumerate(rows)]
    for d, cards in cards_per_day.items():
        picked = rng.choice(600, cards * spree, replace=False)
        for j, i in enumerate(picked.tolist()):
            out[d * 600 + i].update(card_id=f"spree-{d}-{j // spree}", score=0.9, decision="review")
    return out


def test_the_flagged_share_is_judged_with_the_references_dispersion() -> None:
    # The reference week flags 6 events a day, as 2 cards' sprees of 3. Two later days with 7
    # such sprees (21 flagged: 6 binomial standard deviations) are within what those sprees
    # make likely (dispersion ~3 -> ~3.6 deviations): no alert. Twenty sprees on one day are
    # not one either (a window alone: sprees jump by chance), on two days in a row they are.
    # The same 21 against a reference whose flags were each a card of its own: an alert.
    rows = stream(41, 600, None)
    calm = {d: 2 for d in range(30, 36)} | {36: 7, 37: 7}
    mon = MonitorCore(core().c, ConceptDriftMonitor())
    alerts = mon.scores(sprees(rows, calm | {38: 20, 39: 20}, spree=3)).alerts
    flagged = [a for a in alerts if a.subject == "flagged"]
    assert mon.scores_ref is not None and 2.5 < mon.scores_ref.dispersion < 3.5
    assert [a.details["window_start"][:10] for a in flagged] == ["1970-02-09"]  # day 39
    assert "dispersion 3" in flagged[0].message and flagged[0].details["z"] >= 5
    assert flagged[0].details["windows_in_a_row"] == 2

    singles = {d: 6 for d in range(30, 35)}
    control = MonitorCore(core().c, ConceptDriftMonitor())
    late = control.scores(sprees(sprees(rows, singles, spree=1), {36: 7, 37: 7}, spree=3)).alerts
    assert control.scores_ref is not None and control.scores_ref.dispersion < 1.5
    assert [a.details["window_start"][:10] for a in late if a.subject == "flagged"] == [
        "1970-02-07"
    ]


def test_the_dispersion_with_count_windows_only() -> None:
    # no time windows (RIVERWATCH_MONITOR_WINDOW_S=0): a card's cluster spans a day
    cfg = dataclasses.replace(core().c, window_s=0.0, window_size=600)
    mon = MonitorCore(cfg, ConceptDriftMonitor())
    mon.scores(sprees(stream(40, 600, None), {d: 2 for d in range(30, 35)}, spree=3))
    assert mon.ready and mon.scores_ref is not None and mon.scores_ref.dispersion > 2
