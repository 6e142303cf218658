"""From feature rows to scores, decisions and reasons: one function for every scorer.

The combined score blends the two models' probabilities linearly::

    score = w * batch_score + (1 - w) * online_score

and is the online score alone while no batch champion exists. ``w`` is the champion's own
blend weight, fitted on its hold-out when it was trained (``models.training.blend_weight``:
the weight that ranked the hold-out's frauds best against the online scores recorded there),
or ``batch_weight`` (``RIVERWATCH_BATCH_WEIGHT``) for a champion without one or when
``RIVERWATCH_BLEND=fixed``. A challenger, when present, is
scored in the shadow (``shadow_score``): recorded, never used to decide.

Calibrated, with ``RIVERWATCH_SCORE_CALIBRATION=true`` (off by default: on the reported
seeds of the quality benchmark the maps fixed the expected fraud count but made the Brier
score worse on 7 of 8 seeds and did not bring the monitor's estimates closer; README, issue
17; the maps are fitted and stored either way): a batch model fitted with a
:class:`Calibration` serves
its score (``batch_score``, ``shadow_score``) through its ``batch`` map, and the champion's
``combined`` map turns the blend of its *raw* score and the online score into ``score``, the
one decisions and the monitor read (:func:`combine`). Both maps are strictly increasing, so
every ranking is the uncalibrated one. The combined map holds for the blend weight it was
fitted at: a scorer serving another (``RIVERWATCH_BLEND=fixed`` with a different
``RIVERWATCH_BATCH_WEIGHT``) serves the blend uncalibrated, as does a champion pickled before
calibration existed. The online score alone (no champion yet) is served as the learner gives it.

Fails closed: a model output that is NaN or infinite (the features are finite, so only a
corrupt model could give one) is counted in ``riverwatch_nonfinite_scores_total``, replaced by
the review threshold, and its transaction's decision is ``review``, never ``approve``.

>>> import numpy as np
>>> from riverwatch.models.online import make_model
>>> from riverwatch.models.serving import Models
>>> X = np.zeros((2, len(FEATURE_NAMES)))
>>> out = score_matrix(Models(make_model()), X, Thresholds())
>>> [o["decision"] for o in out], out[0]["batch_score"]
(['approve', 'approve'], None)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from riverwatch.core.events import Transaction
from riverwatch.core.metrics import NONFINITE_SCORES
from riverwatch.models import online
from riverwatch.models.calibration import Calibration
from riverwatch.models.decision import decide
from riverwatch.models.features import FEATURE_CAP, FEATURE_NAMES
from riverwatch.models.serving import BatchModel, Models


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds and the blend weight (``Context.thresholds`` builds them from
    settings)."""

    review: float = 0.5
    decline: float = 0.8
    batch_weight: float = 0.5
    learned_blend: bool = True  # serve the champion's own blend weight when it has one
    calibrated: bool = False  # serve scores through the champion's calibration maps


def _columns(model: BatchModel, X: np.ndarray, names: Sequence[str]) -> np.ndarray:
    if model.features == tuple(names):
        return X
    # ModelSet refuses a model needing a column the scorer lacks, so every one is here.
    where = {f: i for i, f in enumerate(names)}
    return X[:, [where[f] for f in model.features]]


def batch_proba(
    model: BatchModel, X: np.ndarray, names: Sequence[str] = FEATURE_NAMES
) -> np.ndarray:
    """A batch model's fraud probabilities on rows whose columns are ``names``."""
    return np.asarray(model.estimator.predict_proba(_columns(model, X, names))[:, 1], dtype=float)


def calibration(model: BatchModel | None) -> Calibration | None:
    """The calibration a batch model's artifact carries, or None (an older artifact)."""
    return None if model is None else getattr(model.estimator, "calibration", None)


def batch_score(model: BatchModel, raw: np.ndarray) -> np.ndarray:
    """A batch model's served score: its raw probabilities through its own map, if any."""
    cal = calibration(model)
    return raw if cal is None else cal.batch(raw)


def combine(
    raw_batch: np.ndarray, p_online: np.ndarray, w: float, cal: Calibration | None
) -> np.ndarray:
    """The combined score: ``w * raw_batch + (1 - w) * p_online`` through the champion's
    combined map when it was fitted at this ``w`` (see the module docstring)."""
    raw = w * raw_batch + (1 - w) * p_online
    if cal is None or cal.combined is None or cal.weight is None:
        return raw
    return cal.combined(raw) if math.isclose(cal.weight, w, abs_tol=1e-9) else raw


def blend(models: Models, th: Thresholds) -> float:
    """The batch model's weight in the combined score (see the module docstring)."""
    learned = models.champion.blend_weight if models.champion is not None else None
    return learned if th.learned_blend and learned is not None else th.batch_weight


def score_record(
    tx: Transaction, result: dict[str, Any], latency_s: float, scored_at: str
) -> dict[str, Any]:
    """The Score record (core.events.Score fields) of one transaction and its result row.

    Its ``timestamp`` is the event's aware UTC datetime, for orjson, which writes it as
    ``isoformat()`` would (the scorer: 0.2 us against 0.75 us an event); a caller that encodes it
    otherwise converts it first (pydantic writes UTC as ``Z``: api.sync_scorer)."""
    return {
        "event_id": tx.event_id,
        "card_id": tx.card_id,
        "timestamp": tx.timestamp,
        **result,
        "latency_ms": round(latency_s * 1000, 3),
        "scored_at": scored_at,
    }


def _finite(p: np.ndarray, model: str, fallback: float) -> tuple[np.ndarray, np.ndarray]:
    """``p`` with NaN and infinities replaced by ``fallback`` (counted), and where they were."""
    bad = ~np.isfinite(p)
    if not bad.any():
        return p, bad
    NONFINITE_SCORES.labels(model=model).inc(int(bad.sum()))
    return np.where(bad, fallback, p), bad


def score_matrix(
    models: Models, X: np.ndarray, th: Thresholds, names: Sequence[str] = FEATURE_NAMES
) -> list[dict[str, Any]]:
    """Score every row of ``X`` (columns ``names``); return per row a Score record's fields.

    Every number returned is finite; a row whose score was not is decided ``review``.
    """
    if len(X) == 0:
        return []
    X = np.asarray(X, dtype=float)
    if not np.isfinite(X).all():  # models.features never gives one; a caller's matrix might
        X = np.nan_to_num(X, nan=0.0, posinf=FEATURE_CAP, neginf=-FEATURE_CAP)
    fallback = th.review
    p_raw, why = online.explained(models.online, X, names)  # the model read once per batch
    p_online, bad = _finite(p_raw, "online", fallback)
    p_batch = p_shadow = None
    raw = p_online
    if models.champion is not None:
        raw_batch, bad_batch = _finite(batch_proba(models.champion, X, names), "batch", fallback)
        bad |= bad_batch
        cal = calibration(models.champion) if th.calibrated else None
        p_batch = batch_score(models.champion, raw_batch) if cal is not None else raw_batch
        raw = combine(raw_batch, p_online, blend(models, th), cal)
    if models.challenger is not None:
        raw_shadow, _ = _finite(batch_proba(models.challenger, X, names), "shadow", fallback)
        p_shadow = batch_score(models.challenger, raw_shadow) if th.calibrated else raw_shadow
    score, bad_combined = _finite(raw, "combined", fallback)
    bad |= bad_combined
    decisions = decide(score, th.review, th.decline)
    decisions[bad] = "review"  # fail closed: a score that could not be computed never approves
    index = {f: j for j, f in enumerate(names)}
    versions = models.versions()
    # numpy to Python once per column: a numpy scalar per row and field costs ~0.1 us each
    none = [None] * len(X)
    batch = none if p_batch is None else p_batch.astype(float).tolist()
    shadow = none if p_shadow is None else p_shadow.astype(float).tolist()
    return [
        {
            "score": s,
            "online_score": o,
            "batch_score": b,
            "shadow_score": sh,
            "decision": d,
            "model_versions": versions,
            "reasons": [
                {"feature": f, "value": x[index[f]], "contribution": c} for f, c in reasons
            ],
        }
        for s, o, b, sh, d, x, reasons in zip(
            score.astype(float).tolist(),
            p_online.astype(float).tolist(),
            batch,
            shadow,
            decisions.tolist(),
            X.tolist(),
            why,
            strict=True,
        )
    ]
