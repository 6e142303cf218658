"""Fraud-detection metrics: AUC ROC, Average Precision, Card Precision@k, precision/recall.

Card Precision@k is the Fraud Detection Handbook's (chapter 4, "Precision top-k metrics"):
an investigator can check ``k`` cards a day, so each day the cards are ranked by their highest
score that day and the metric is the share of the top ``k`` cards that had at least one fraud
that day, divided by ``k`` even when fewer than ``k`` cards were active. Cards found
compromised on a previous day are blocked, so (as in the Handbook's default,
``remove_detected_compromised_cards=True``) they are left out of the later days. The result is
the mean over the days that had transactions; the per-day values come with it.

>>> y = [0, 0, 1, 1]
>>> s = [0.1, 0.4, 0.35, 0.8]
>>> auc_roc(y, s), round(average_precision(y, s), 4)
(0.75, 0.8333)
>>> precision_recall_at(y, s, 0.3)
(0.6666666666666666, 1.0)
>>> days = [0, 0, 0, 1, 1]
>>> cards = ["a", "b", "c", "a", "c"]
>>> cp = card_precision_at_k(days, cards, [1, 0, 0, 1, 1], [0.9, 0.5, 0.2, 0.9, 0.6], k=2)
>>> cp.per_day, cp.mean
({0: 0.5, 1: 0.5}, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

DAY_S = 86_400
ArrayLike: TypeAlias = Sequence[Any] | np.ndarray | pd.Series


def _single_class(y: np.ndarray) -> bool:
    return len(y) == 0 or bool(np.all(y == y[0]))


def auc_roc(y: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve; NaN when ``y`` holds a single class (it is undefined then)."""
    yy = np.asarray(y)
    if _single_class(yy):
        return math.nan
    return float(roc_auc_score(yy, np.asarray(scores, dtype=float)))


def average_precision(y: ArrayLike, scores: ArrayLike) -> float:
    """Average Precision (area under the precision-recall curve); NaN when there is no fraud."""
    yy = np.asarray(y)
    if len(yy) == 0 or not yy.any():
        return math.nan
    return float(average_precision_score(yy, np.asarray(scores, dtype=float)))


def precision_recall_at(y: ArrayLike, scores: ArrayLike, threshold: float) -> tuple[float, float]:
    """Precision and recall of the rule ``score >= threshold``; NaN where the ratio is 0/0."""
    yy = np.asarray(y).astype(bool)
    flagged = np.asarray(scores, dtype=float) >= threshold
    tp = int(np.sum(flagged & yy))
    n_flagged, n_pos = int(flagged.sum()), int(yy.sum())
    precision = tp / n_flagged if n_flagged else math.nan
    recall = tp / n_pos if n_pos else math.nan
    return precision, recall


@dataclass(frozen=True)
class CardPrecision:
    """Card Precision@k: the mean over days, and each day's value (day -> precision)."""

    k: int
    mean: float
    per_day: dict[int, float] = field(default_factory=dict)
    detected: dict[int, int] = field(default_factory=dict)  # day -> compromised cards in top k
    compromised: dict[int, int] = field(default_factory=dict)  # day -> compromised cards left


def card_precision_at_k(
    days: ArrayLike,
    cards: ArrayLike,
    y: ArrayLike,
    scores: ArrayLike,
    k: int = 100,
    remove_detected: bool = True,
) -> CardPrecision:
    """The Handbook's Card Precision@k over the days in ``days`` (any sortable day labels).

    ``detected[day]`` counts the compromised cards in that day's top k, ``compromised[day]``
    the compromised cards still in play that day (the most the top k could have found).
    Ties in a card's score are broken by card id, so the result is deterministic. ``mean`` is
    NaN when there are no rows.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    df = pd.DataFrame(
        {
            "day": np.asarray(days),
            "card": np.asarray(cards),
            "y": np.asarray(y).astype(int),
            "s": np.asarray(scores, dtype=float),
        }
    )
    # One row per (day, card): the card's highest score and whether any of its payments was
    # fraud that day, as the Handbook's groupby('CUSTOMER_ID').max() does.
    per_card = df.groupby(["day", "card"], sort=True).agg(s=("s", "max"), y=("y", "max"))
    blocked: set[Any] = set()
    per_day: dict[Any, float] = {}
    detected: dict[Any, int] = {}
    compromised: dict[Any, int] = {}
    for day, g in per_card.groupby(level="day", sort=True):
        g = g.droplevel("day")
        if blocked:
            g = g[~g.index.isin(blocked)]
        compromised[day] = int(g["y"].sum())
        top = g.reset_index().sort_values(["s", "card"], ascending=[False, True]).head(k)
        found = top.loc[top["y"] == 1, "card"].tolist()
        detected[day] = len(found)
        per_day[day] = len(found) / k
        if remove_detected:
            blocked.update(found)
    mean = float(np.mean(list(per_day.values()))) if per_day else math.nan
    return CardPrecision(k, mean, _plain(per_day), _plain(detected), _plain(compromised))


def _plain(d: dict[Any, Any]) -> dict[Any, Any]:
    # numpy scalars (np.int64 days) print and serialize badly; hand back Python values.
    return {(k.item() if hasattr(k, "item") else k): v for k, v in d.items()}


def day_of(epochs: ArrayLike) -> np.ndarray:
    """The UTC day number (days since 1970-01-01) of each event time, the CP@k day.

    >>> day_of([0.0, 86_399.9, 86_400.0]).tolist()
    [0, 0, 1]
    """
    return np.floor(np.asarray(epochs, dtype=float) / DAY_S).astype(np.int64)


def fraud_metrics(
    epochs: ArrayLike, cards: ArrayLike, y: ArrayLike, scores: ArrayLike, k: int = 100
) -> dict[str, float]:
    """The metrics riverwatch compares models by: ``auc``, ``ap``, ``cp@k``, ``n``, ``frauds``.

    Undefined metrics (no fraud, one class) are NaN; callers decide what that means.

    >>> m = fraud_metrics([0, 10, 20, 86_400], ["a", "b", "a", "c"], [0, 1, 0, 1],
    ...                   [0.2, 0.9, 0.1, 0.7], k=1)
    >>> m["auc"], m["ap"], m["cp@1"], m["n"], m["frauds"]
    (1.0, 1.0, 1.0, 4.0, 2.0)
    """
    yy = np.asarray(y).astype(int)
    ss = np.asarray(scores, dtype=float)
    cp = card_precision_at_k(day_of(epochs), cards, yy, ss, k)
    return {
        "auc": auc_roc(yy, ss),
        "ap": average_precision(yy, ss),
        f"cp@{k}": cp.mean,
        "n": float(len(yy)),
        "frauds": float(yy.sum()),
    }
