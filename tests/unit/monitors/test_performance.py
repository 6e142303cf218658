"""Performance on matured labels and its intervals (riverwatch.monitors.performance)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from riverwatch.models.evaluation import auc_roc, average_precision, card_precision_at_k, day_of
from riverwatch.monitors.performance import label_maturity, performance

DAY = 86_400.0


def _window(seed: int = 0, n: int = 400) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 4 * DAY, n))
    y = (rng.random(n) < 0.2).astype(int)
    s = np.clip(0.4 * y + rng.random(n) * 0.7, 0, 1)
    cards = rng.integers(0, 60, n).astype(str)
    return t, s, y, cards


def test_label_maturity_counts_events_whose_horizon_has_passed() -> None:
    m = label_maturity([0.0, DAY, 2 * DAY, 3 * DAY], as_of=9 * DAY, horizon_s=7 * DAY)
    assert (m.n, m.matured, m.share, m.cutoff) == (4, 3, 0.75, 2 * DAY)
    assert math.isnan(label_maturity([], as_of=0, horizon_s=1).share)


def test_performance_uses_only_matured_events_and_marks_the_rest_provisional() -> None:
    t, s, y, cards = _window()
    as_of, horizon = 9 * DAY, 7 * DAY  # events of the first two days have matured
    rep = performance(t, s, y, cards, as_of=as_of, horizon_s=horizon, threshold=0.5, k=5)
    keep = t <= as_of - horizon
    assert rep.provisional and rep.matured == rep.labeled == int(keep.sum()) < rep.n
    assert rep.maturity == pytest.approx(keep.mean())
    assert rep.auc == auc_roc(y[keep], s[keep])
    assert rep.ap == average_precision(y[keep], s[keep])
    cp = card_precision_at_k(day_of(t[keep]), cards[keep], y[keep], s[keep], 5)
    assert rep.card_precision == cp.mean
    flagged = s[keep] >= 0.5
    assert rep.precision == (y[keep] & flagged).sum() / flagged.sum()
    assert rep.recall == (y[keep] & flagged).sum() / y[keep].sum()
    final = performance(t, s, y, cards, as_of=20 * DAY, horizon_s=horizon, threshold=0.5, k=5)
    assert not final.provisional and final.matured == final.n and final.maturity == 1.0


def test_performance_handles_missing_labels_and_serializes() -> None:
    t, s, y, cards = _window(1, 50)
    labels: list[int | None] = [None if i % 5 == 0 else int(v) for i, v in enumerate(y)]
    kwargs = {"as_of": 30 * DAY, "horizon_s": 7 * DAY, "threshold": 0.5}
    skip = performance(t, s, labels, cards, **kwargs)  # type: ignore[arg-type]
    assert skip.labeled == 40 and skip.matured == 50
    assume = performance(t, s, labels, cards, unlabeled_is_negative=True, **kwargs)  # type: ignore[arg-type]
    assert assume.labeled == 50
    none = performance(t, s, labels, cards, as_of=0.0, horizon_s=DAY, threshold=0.5)
    assert none.provisional and none.labeled == 0 and math.isnan(none.auc)
    assert json.loads(json.dumps(none.to_dict()))["auc"] is None
    with pytest.raises(ValueError, match="same length"):
        performance(t, s[:-1], y, cards, **kwargs)  # type: ignore[arg-type]


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 5)),  # few distinct scores: many ties
        min_size=2,
        max_size=60,
    ).filter(lambda rows: any(y for y, _ in rows))
)
def test_weighted_ap_with_unit_weights_is_scikit_learns(rows: list[tuple[bool, int]]) -> None:
    from riverwatch.monitors.performance import _weighted_ap

    y = np.array([int(a) for a, _ in rows])
    s = np.array([float(b) for _, b in rows])
    got = float(_weighted_ap(y, s, np.ones((1, len(y))))[0])
    assert abs(got - average_precision(y, s)) < 1e-12


def test_ap_upper_bound_holds_the_true_ap_most_of_the_time() -> None:
    """Coverage of the bound: over windows drawn from one model, the AP of the whole
    population is below each window's 90% upper bound in about 90% of windows."""
    from riverwatch.monitors.performance import ap_upper

    rng = np.random.default_rng(11)
    n, rate = 200_000, 0.01
    y_all = (rng.random(n) < rate).astype(int)
    s_all = 2.0 * y_all * rng.random(n) + rng.random(n)
    truth = average_precision(y_all, s_all)
    covered = 0
    for _ in range(100):
        idx = rng.integers(0, n, size=2000)
        covered += truth <= ap_upper(y_all[idx], s_all[idx], confidence=0.9)
    assert 80 <= covered <= 99, covered
