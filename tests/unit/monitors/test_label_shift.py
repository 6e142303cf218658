"""Label shift in the monitor's pure core: the fraud rate among matured labels per window of
event time against the reference's (monitors.labelshift, the policy's ``label_shift``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from riverwatch.core.outputs import Alert
from riverwatch.models.features import FEATURE_NAMES
from riverwatch.monitors.concept import ConceptDriftMonitor
from riverwatch.monitors.core import MonitorCore
from riverwatch.monitors.core.config import CoreConfig
from riverwatch.monitors.labelshift import LabelRates
from riverwatch.monitors.policy.config import PolicyConfig

DAY = 86_400.0
DELAY = 2 * DAY
PER_DAY = 1500


def core(**policy: Any) -> MonitorCore:
    """Warm-up 2 days, reference 5 days (days 2-6), daily windows, labels 2 days late."""
    cfg = CoreConfig(
        features=FEATURE_NAMES,
        drift_columns=("amount", "card_n_30d"),
        window_size=0,
        warmup_s=2 * DAY,
        reference_s=5 * DAY,
        label_delay_s=DELAY,
        policy=PolicyConfig(cooldown_s=0, **policy),
    )
    return MonitorCore(cfg, ConceptDriftMonitor())


def run(
    mon: MonitorCore,
    days: int,
    rate: Callable[[int], float],
    *,
    labelled: float = 1.0,
    scores: bool = True,
    seed: int = 0,
) -> list[Alert]:
    """``days`` of ``PER_DAY`` payments, fraud with probability ``rate(day)`` each (Bernoulli:
    Poisson noise in the daily counts), a share ``labelled`` of them labelled ``DELAY`` later;
    fed per 2 event-hours, the labels due first (as the scenario benchmark does). The
    label-shift alerts (``drift`` on ``labels``)."""
    rng = np.random.default_rng(seed)
    rows, due, found = [], [], []
    for d in range(days):
        for i in range(PER_DAY):
            t = d * DAY + (i + 0.5) * DAY / PER_DAY
            score = float(rng.beta(1, 30))
            row = {
                "x": rng.lognormal(0, 0.5, len(FEATURE_NAMES)).tolist(), "score": score,
                "decision": "approve", "groups": {"region": "north"}, "epoch": t,
            }  # fmt: skip
            rows.append(row)
            if rng.random() < labelled:
                due.append((row, int(rng.random() < rate(d)), t + DELAY))
    step = 2 * 3600.0
    for lo in np.arange(0.0, days * DAY, step):
        hi = lo + step
        decisions = [mon.labels([x for x in due if lo <= x[2] < hi], "champion")]
        if scores:
            decisions.append(mon.scores([r for r in rows if lo <= r["epoch"] < hi]))
        found += [a for dec in decisions for a in dec.alerts if a.subject == "labels"]
    return found


def step_at(day: int, before: float = 0.01, after: float = 0.03) -> Callable[[int], float]:
    return lambda d: after if d >= day else before


def test_a_step_in_the_fraud_rate_among_labels_raises_a_label_shift_alert() -> None:
    mon = core()
    alerts = run(mon, 15, step_at(9))
    assert alerts and {a.kind for a in alerts} == {"drift"}
    a = alerts[0]
    # days 9 and 10 both rose (two windows in a row); day 10's labels are all due on day 13
    assert pd.Timestamp(a.details["window_start"]).timestamp() == 10 * DAY
    assert a.message.startswith("label shift: fraud rate among labels rose to ")
    assert a.details["finding"] == "label_shift" and a.details["windows_in_a_row"] == 2
    assert 0.02 < a.details["rate"] < 0.04 and 0.007 < a.details["reference_rate"] < 0.013
    assert f"rose to {a.details['rate']:.2%} from {a.details['reference_rate']:.2%}" in a.message
    assert a.details["reference_labels"] == 5 * PER_DAY  # every label of days 2-6, no other


def test_a_calm_stream_with_poisson_noise_raises_nothing_though_judged() -> None:
    for seed in range(2):
        mon = core()
        assert run(mon, 22, lambda d: 0.01, seed=seed) == []
        # its windows were judged (the 12 days after the reference's labels), none rose
        assert mon.policy.state()["drift_streak"]["labels"] == 0


def test_too_few_labels_per_window_are_not_judged() -> None:
    # a share of 0.4 labelled: 600 labels a day, below the 1000 a window needs (1 % -> 5 %)
    assert run(core(), 15, step_at(9, after=0.05), labelled=0.4) == []
    assert run(core(label_shift_min_labels=500), 15, step_at(9, after=0.05), labelled=0.4) != []


def test_nothing_is_judged_before_the_reference_is_ready_and_its_labels_matured() -> None:
    # no scored events: the reference (features, scores) never becomes ready
    mon = core()
    mon.begin(0.0)
    assert run(mon, 15, step_at(9), scores=False) == []
    # labels of the warm-up (days 0-1) are not the reference's: a fraud-free warm-up does not
    # lower it, so a calm stream after it raises nothing
    mon = core()
    assert run(mon, 15, lambda d: 0.0 if d < 2 else 0.01) == []
    assert mon.label_rates.ref[1] == 5 * PER_DAY
    # a step right after the reference period is judged only once its labels have matured
    mon = core()
    alerts = run(mon, 13, step_at(7))
    assert alerts and pd.Timestamp(alerts[0].details["window_start"]).timestamp() == 8 * DAY


def test_label_rates_hand_out_matured_windows_once_in_order() -> None:
    r = LabelRates(width=DAY, delay=DELAY)
    period = (0.0, DAY)
    for t in np.arange(0.0, 4 * DAY, DAY / 100):
        r.add(float(t), int(t % DAY < DAY / 10), period)
    assert r.matured(2.9 * DAY, period) == []  # the reference is due at 3 days
    assert r.matured(4.0 * DAY, period) == [(1, 10, 100)]
    assert r.matured(6.0 * DAY, period) == [(2, 10, 100), (3, 10, 100)]
    r.add(1.5 * DAY, 1, period)  # a label of a window handed out: late, not counted
    assert r.late == 1 and r.matured(9.0 * DAY, period) == []
    r.add(7.5 * DAY, 1, (DAY, 2 * DAY))  # another reference period: afresh
    assert r.ref == (0, 0) and r.open == {7: (1, 1)}


def test_a_reference_set_from_rows_with_labels_is_the_label_shift_reference_at_once() -> None:
    # a champion's training rows (the runner passes their labels): days 0-4, 1 % fraud
    rng = np.random.default_rng(1)
    rows = [
        {"x": rng.lognormal(0, 0.5, len(FEATURE_NAMES)).tolist(), "score": 0.01,
         "groups": {"region": "north"}, "epoch": (d + i / PER_DAY) * DAY,
         "label": int(rng.random() < 0.01)}
        for d in range(5) for i in range(PER_DAY)
    ]  # fmt: skip
    mon = core()
    assert mon.set_reference(rows, "champion c1")
    assert mon.label_rates.ref == (sum(r["label"] for r in rows), len(rows))
    alerts = run(mon, 12, step_at(7))  # the stream's own labels of days 0-4 are not counted
    assert mon.label_rates.ref == (sum(r["label"] for r in rows), len(rows))
    assert alerts and pd.Timestamp(alerts[0].details["window_start"]).timestamp() == 8 * DAY
