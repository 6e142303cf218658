"""Train a challenger and evaluate it and the champion on the hold-out; the windows and the
promotion rule are :mod:`riverwatch.models.promotion`'s.

The challenger also gets its *blend weight* (:func:`blend_weight`): the ``w`` of
``w * batch + (1 - w) * online`` that maximises ``metric`` on the hold-out, against the
online scores recorded there at scoring time. Scorers serve the champion's weight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riverwatch.models import features as feature_defs
from riverwatch.models.batch import BatchClassifier, predict_batch, train_batch
from riverwatch.models.calibration import Calibration, fit_calibration
from riverwatch.models.evaluation import fraud_metrics
from riverwatch.models.promotion import DAY_S, TrainConfig, Windows, decide, windows

METRICS = ("auc", "ap", "cp@100")


@dataclass(frozen=True)
class TrainingResult:
    """What a training run produced and decided.

    ``challenger`` is None when there was too little data to fit one; ``evaluated`` tells
    whether the hold-out could rank it (it needs frauds and non-frauds). ``reason`` says why
    in words a person can act on.
    """

    windows: Windows
    challenger: BatchClassifier | None
    challenger_metrics: dict[str, float] | None
    champion_metrics: dict[str, float] | None
    promote: bool
    reason: str
    counts: dict[str, int] = field(default_factory=dict)
    features: tuple[str, ...] = ()
    blend_weight: float | None = None

    @property
    def evaluated(self) -> bool:
        """True when the challenger has hold-out metrics worth registering."""
        return self.challenger is not None and self.challenger_metrics is not None

    def summary(self) -> dict[str, Any]:
        """JSON-able: windows, counts, both metric sets, the decision and its reason."""
        return {
            "windows": asdict(self.windows),
            "counts": dict(self.counts),
            "challenger": self.challenger_metrics,
            "champion": self.champion_metrics,
            "promote": self.promote,
            "reason": self.reason,
            "blend_weight": self.blend_weight,
        }


def _matrix(df: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    # A column the frame lacks (a feature added after these rows were stored) is missing: NaN.
    return df.reindex(columns=list(names)).to_numpy(dtype=float)


def _lacks(df: pd.DataFrame) -> str | None:
    """What keeps ``df`` from training or ranking (both classes are needed), or None."""
    frauds = int(df["label"].sum())
    if df.empty:
        return "no labeled rows"
    if frauds == 0:
        return f"no fraud among {len(df)} labeled rows"
    return "only frauds, no legitimate rows" if frauds == len(df) else None


def _metrics(df: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    m = fraud_metrics(df["epoch"], df["card_id"], df["label"], scores, k=100)
    return {k: m[k] for k in METRICS}


def train_and_evaluate(
    labeled: pd.DataFrame,
    now: float,
    cfg: TrainConfig,
    champion: BatchClassifier | None = None,
    feature_names: Sequence[str] | None = None,
    win: Windows | None = None,
) -> TrainingResult:
    """Fit a challenger on ``labeled`` (offline-store rows), evaluate it and the champion.

    ``labeled`` needs ``epoch``, ``card_id``, ``label`` and the feature columns; rows outside
    the two windows (``win``, default ``windows(now, cfg)``) are ignored. ``feature_names``
    defaults to the current FEATURE_NAMES.
    """
    names = tuple(feature_names or feature_defs.FEATURE_NAMES)
    w = win or windows(now, cfg)
    ep = labeled["epoch"]
    train = labeled[(ep >= w.train_start) & (ep < w.train_end)]
    hold = labeled[(ep >= w.holdout_start) & (ep < w.holdout_end)]
    counts = {
        "train_rows": len(train),
        "train_frauds": int(train["label"].sum()),
        "holdout_rows": len(hold),
        "holdout_frauds": int(hold["label"].sum()),
    }

    def result(model: BatchClassifier | None, reason: str, **kw: Any) -> TrainingResult:
        return TrainingResult(
            w, model, kw.get("chal"), kw.get("champ"), kw.get("promote", False),
            reason, counts, names, kw.get("blend"),
        )  # fmt: skip

    if lack := _lacks(train):
        return result(None, f"too little data: {lack} in the training window ({w.describe()})")
    model = _fit(train, names, w.train_end, cfg)
    if lack := _lacks(hold):
        return result(model, f"cannot evaluate: {lack} in the hold-out window ({w.describe()})")
    X_hold = _matrix(hold, names)
    p_hold = predict_batch(model, X_hold)
    chal = _metrics(hold, p_hold)
    champ, promote, why = _judge(hold, X_hold, p_hold, chal, champion, names, cfg, w)
    blend = blend_weight(hold, p_hold, cfg.metric)
    model.calibration = _calibrate(hold, p_hold, blend)
    if cfg.refit:
        # Judged on the hold-out, served fitted on every matured label, the hold-out included;
        # the judged model rides along, for the next retrain to judge this one by (_judge).
        # The windows' copies go first (a quarter of a million rows: ~100 MB), and the rows
        # are taken as they are where all lie in the windows (the trainer reads just those).
        del train, hold, X_hold
        inside = (ep >= w.train_start) & (ep < w.holdout_end)
        both = labeled if inside.all() else labeled[inside]
        judged, model = model, _fit(both, names, w.holdout_end, cfg)
        model.judged, model.calibration = judged, judged.calibration
        counts["refit_rows"] = len(both)
    return result(model, why, chal=chal, champ=champ, promote=promote, blend=blend)


def _calibrate(hold: pd.DataFrame, p_hold: np.ndarray, blend: float | None) -> Calibration:
    """The hold-out's calibration (``models.calibration``) of the batch score and of the
    combined score at the blend weight ``blend``, from the online scores recorded there.

    A refit model is served with the map fitted on its judged self's hold-out scores: the refit
    has seen the hold-out, so no unseen labels are left to fit one on; both are fitted alike,
    and the quality bench measures the map on the following week (README, issue 17).
    """
    order = np.argsort(hold["epoch"].to_numpy(), kind="stable")  # folds are blocks of time
    online = (pd.to_numeric(hold["online_score"], errors="coerce").to_numpy()
              if "online_score" in hold else np.full(len(hold), np.nan))  # fmt: skip
    y = hold["label"].to_numpy()
    return fit_calibration(p_hold[order], online[order], y[order], blend)


def recency_weights(epochs: Any, end: float, half_life_days: float | None) -> np.ndarray | None:
    """Row weights halving every ``half_life_days`` of age before ``end``; None: all equal.

    >>> recency_weights([10 * DAY_S, 3 * DAY_S], 10 * DAY_S, 7).round(3).tolist()
    [1.0, 0.5]
    """
    if half_life_days is None:
        return None
    age = (end - np.asarray(epochs, dtype=float)) / DAY_S
    return np.asarray(0.5 ** (age / half_life_days), dtype=float)


def _fit(rows: pd.DataFrame, names: Sequence[str], end: float, cfg: TrainConfig) -> BatchClassifier:
    weights = recency_weights(rows["epoch"], end, cfg.half_life_days)
    return train_batch(_matrix(rows, names), rows["label"].to_numpy(), names,
                       sample_weight=weights, trained_until=end, members=cfg.members)  # fmt: skip


_AS_JUDGED = "the champion as judged before its refit,"
_NO_NEWER = "no newer label to retrain on, kept"


def _judge(
    hold: pd.DataFrame,
    X_hold: np.ndarray,
    p_hold: np.ndarray,
    chal: dict[str, float],
    champion: BatchClassifier | None,
    names: Sequence[str],
    cfg: TrainConfig,
    w: Windows,
) -> tuple[dict[str, float] | None, bool, str]:
    """The champion's hold-out metrics and the decision (see :func:`decide`).

    Both sides are judged as fitted on their training windows, on the same whole hold-out.
    A refit champion (``refit``) is served fitted on its hold-out too, through a week after
    the training window a daily challenger is judged as fitted on, and on part of this
    hold-out: judged as served it faces a fresher model, on the one or two days it has not
    seen (0 of 36 daily challengers were promoted so). So it is judged as it was judged when
    promoted, before its refit (``champion.judged``, fitted before this hold-out): the same
    protocol as the challenger, whose refit, if promoted, is as much fresher as its training
    window is. Refitting the challenger instead would leave it no unseen hold-out, and not
    refitting the served model would lose the refit's gain (README, issue 17). With no label
    newer than the judged champion's (the same training window) it is kept without a contest.

    A champion without a judged model (pickled before it, or a manual promotion of one) is
    judged as served: on all the hold-out when fitted before it, else only on the rows it has
    not seen; when those cannot rank (one class), the challenger, fitted on fresher labels,
    is promoted if it beats chance. One fitted on all of it is kept.
    """
    if champion is None:
        return None, *decide(chal, None, cfg)
    judged = getattr(champion, "judged", None)
    until = getattr(judged, "trained_until", None)
    if judged is not None and until is not None and until <= w.holdout_start:
        champ = _metrics(hold, predict_batch(judged, X_hold, names=names))
        if until >= w.train_end:
            return champ, False, f"{_AS_JUDGED} fitted on the same window: {_NO_NEWER}"
        ok, why = decide(chal, champ, cfg)
        return champ, ok, f"{_AS_JUDGED} on the whole hold-out: {why}"
    seen = getattr(champion, "trained_until", None)
    champ = _metrics(hold, predict_batch(champion, X_hold, names=names))
    if seen is None or seen <= float(hold["epoch"].min()):
        return champ, *decide(chal, champ, cfg)
    if seen >= float(hold["epoch"].max()):  # a retrain with no label newer than its own
        return (
            champ,
            False,
            (
                "the champion was fitted on every label of this hold-out (its metrics here are "
                f"in-sample): {_NO_NEWER}"
            ),
        )
    unseen = (hold["epoch"] >= seen).to_numpy()
    if _lacks(hold[unseen]):
        ok, why = decide(chal, None, cfg)
        return None, ok, f"the champion was fitted on this hold-out; fresher challenger: {why}"
    rows = hold[unseen]
    champ = _metrics(rows, predict_batch(champion, X_hold[unseen], names=names))
    ok, why = decide(_metrics(rows, p_hold[unseen]), champ, cfg)
    return champ, ok, f"on the {len(rows)} hold-out rows the champion has not seen: {why}"


BLEND_GRID = tuple(i / 10 for i in range(11))


def blend_weight(hold: pd.DataFrame, batch: np.ndarray, metric: str) -> float | None:
    """The weight ``w`` in :data:`BLEND_GRID` whose ``w * batch + (1 - w) * online`` scores
    best by ``metric`` on the hold-out ``hold`` (``online_score`` as recorded at scoring
    time); among equals, the one nearest an even blend. None when fewer than half the rows
    have an online score, or none of those is a fraud.

    Eleven candidates on a hold-out of thousands of events: too few to overfit it, enough to
    follow which model is the better one (measured: 0.8-0.9 at the Handbook's scale, where
    the batch model ranks frauds better; AP +0.015 on the next week against a fixed 0.5).

    >>> right, wrong = [0.8, 0.1, 0.7, 0.2], [0.1, 0.8, 0.2, 0.7]   # for labels 1, 0, 1, 0
    >>> hold = pd.DataFrame({"epoch": [0.0] * 4, "card_id": list("abcd"), "label": [1, 0, 1, 0]})
    >>> blend_weight(hold.assign(online_score=wrong), np.array(right), "ap")  # trust batch
    0.6
    >>> blend_weight(hold.assign(online_score=right), np.array(wrong), "ap")  # trust online
    0.4
    >>> blend_weight(hold.assign(online_score=None), np.array(right), "ap") is None
    True
    >>> blend_weight(hold, np.array(right), "ap") is None   # rows stored without the column
    True
    """
    if "online_score" not in hold:
        return None
    online_scores = pd.to_numeric(hold["online_score"], errors="coerce")
    has = online_scores.notna().to_numpy()
    if 2 * has.sum() < len(hold) or not hold["label"].to_numpy()[has].any():
        return None
    rows, on, b = hold[has], online_scores.to_numpy()[has], np.asarray(batch)[has]
    best: tuple[float, float] | None = None
    for w in sorted(BLEND_GRID, key=lambda v: abs(v - 0.5)):
        value = _metrics(rows, w * b + (1 - w) * on)[metric]
        if not math.isnan(value) and (best is None or value > best[0]):
            best = (value, w)
    return None if best is None else best[1]
