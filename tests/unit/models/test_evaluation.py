"""Fraud metrics against hand-computed values, scikit-learn and the Handbook's own code."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from riverwatch.models.evaluation import (
    auc_roc,
    average_precision,
    card_precision_at_k,
    day_of,
    fraud_metrics,
    precision_recall_at,
)


def handbook_cp(df: pd.DataFrame, k: int) -> tuple[list[float], float]:
    """A direct port of the Handbook's card_precision_top_k (remove detected cards)."""
    detected: list[str] = []
    per_day = []
    for day in sorted(df["day"].unique()):
        d = df[df["day"] == day][["s", "card", "y"]]
        d = d[~d["card"].isin(detected)]
        d = d.groupby("card").max().sort_values(by="s", ascending=False).reset_index()
        top = d.head(k)
        found = list(top[top["y"] == 1]["card"])
        per_day.append(len(found) / k)
        detected.extend(found)
    return per_day, float(np.mean(per_day))


def test_auc_and_ap_by_hand() -> None:
    y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    # pairs (pos, neg): (0.35>0.1) (0.35<0.4) (0.8>0.1) (0.8>0.4) -> 3/4
    assert auc_roc(y, s) == 0.75
    # ranked: 0.8 (fraud, P=1, R=.5), 0.4, 0.35 (fraud, P=2/3, R=1) -> .5*1 + .5*2/3
    assert average_precision(y, s) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_auc_and_ap_match_sklearn_on_random_data() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(5000) < 0.02
    s = rng.random(5000) + y * 0.3
    assert auc_roc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s))


def test_undefined_metrics_are_nan() -> None:
    assert math.isnan(auc_roc([0, 0, 0], [0.1, 0.2, 0.3]))
    assert math.isnan(auc_roc([], []))
    assert math.isnan(average_precision([0, 0], [0.5, 0.1]))
    assert math.isnan(precision_recall_at([0, 1], [0.1, 0.2], 0.9)[0])  # nothing flagged
    assert math.isnan(precision_recall_at([0, 0], [0.1, 0.9], 0.5)[1])  # nothing to recall


def test_precision_recall_at_a_threshold() -> None:
    y, s = [1, 0, 1, 1, 0], [0.9, 0.8, 0.4, 0.6, 0.1]
    # flagged at 0.5: 0.9 (fraud), 0.8 (legit), 0.6 (fraud) -> precision 2/3, recall 2/3
    assert precision_recall_at(y, s, 0.5) == pytest.approx((2 / 3, 2 / 3))
    assert precision_recall_at(y, s, 0.0) == (0.6, 1.0)


def test_card_precision_by_hand() -> None:
    # day 0: a (.9, fraud), b (.7), c (payments .3 and .8, the second a fraud: max .8)
    days = [0, 0, 0, 0, 1, 1, 1, 2]
    cards = ["a", "b", "c", "c", "a", "b", "c", "d"]
    y = [1, 0, 0, 1, 1, 0, 0, 0]
    s = [0.9, 0.7, 0.3, 0.8, 0.99, 0.5, 0.4, 0.1]
    cp = card_precision_at_k(days, cards, y, s, k=2)
    # day 0 top 2: a (.9, fraud), c (.8, fraud) -> 2/2; both are blocked afterwards
    # day 1: a is gone; top 2: b (.5), c gone -> only b, legit -> 0/2
    # day 2: d legit -> 0/2; divided by k even when fewer than k cards are active
    assert cp.per_day == {0: 1.0, 1: 0.0, 2: 0.0}
    assert cp.mean == pytest.approx(1 / 3)
    assert cp.detected == {0: 2, 1: 0, 2: 0} and cp.compromised == {0: 2, 1: 0, 2: 0}
    # without removal, a (fraud again on day 1, top score) is found again
    keep = card_precision_at_k(days, cards, y, s, k=2, remove_detected=False)
    assert keep.per_day == {0: 1.0, 1: 0.5, 2: 0.0}


def test_card_precision_takes_a_cards_max_and_breaks_ties_by_card_id() -> None:
    # card b's max (0.6) beats a's single 0.5; the fraud is b's low-scored payment
    cp = card_precision_at_k([0, 0, 0], ["a", "b", "b"], [0, 0, 1], [0.5, 0.6, 0.1], k=1)
    assert cp.per_day == {0: 1.0}
    tie = card_precision_at_k([0, 0], ["z", "a"], [1, 0], [0.5, 0.5], k=1)
    assert tie.per_day == {0: 0.0}  # a ranks first on a tie
    with pytest.raises(ValueError, match="k must be"):
        card_precision_at_k([0], ["a"], [0], [0.1], k=0)
    assert math.isnan(card_precision_at_k([], [], [], [], k=5).mean)


def test_card_precision_matches_the_handbooks_code() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    df = pd.DataFrame(
        {
            "day": rng.integers(0, 7, n),
            "card": [f"c{i}" for i in rng.integers(0, 800, n)],
            "y": (rng.random(n) < 0.02).astype(int),
        }
    )
    df["s"] = rng.random(n) + df["y"] * rng.random(n)  # no ties, an imperfect ranking
    per_day, mean = handbook_cp(df, k=100)
    cp = card_precision_at_k(df["day"], df["card"], df["y"], df["s"], k=100)
    assert list(cp.per_day.values()) == pytest.approx(per_day)
    assert cp.mean == pytest.approx(mean)
    assert 0.0 < cp.mean < 1.0


def test_days_and_the_metric_bundle() -> None:
    assert day_of([-1.0, 0.0, 86_400.0 * 3 + 5]).tolist() == [-1, 0, 3]
    m = fraud_metrics([0, 1, 2, 3], ["a", "b", "c", "d"], [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 2)
    assert m == {"auc": 0.75, "ap": pytest.approx(5 / 6), "cp@2": 0.5, "n": 4.0, "frauds": 2.0}
