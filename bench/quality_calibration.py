"""Calibration of the combined score in the quality benchmark (issue 17): decisions and the
monitor's estimate of performance before labels, uncalibrated against calibrated.

For the test week of one seed (bench/quality_seeds.py), per score (``combined (raw)``, the
blend as served before calibration existed, and ``combined``, as served now):

* the decisions at the default thresholds (``RIVERWATCH_REVIEW_THRESHOLD`` 0.5,
  ``..._DECLINE_THRESHOLD`` 0.8): how many transactions are sent to review or beyond
  (``flagged``) and declined, and the realised precision and recall of each;
* the monitor's CBPE estimate (``monitors.cbpe.estimate``, the same call the monitor makes, at
  the review threshold) of precision and recall from the scores alone, against the realised
  figures: per test day (the monitor judges windows of hours to a day) the mean absolute error
  of the estimate, and the week's expected frauds against its frauds.

``python -m bench.quality_calibration`` prints the table of the last run of every reported
seed (``RW_Q_WORLD`` picks the world, as for bench/quality_seeds.py).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from riverwatch.monitors.cbpe import estimate

REVIEW, DECLINE = 0.5, 0.8  # the settings' defaults (core/settings)
SCORES = ("combined (raw)", "combined")
COLUMNS = ("flagged", "prec", "recall", "declined", "dec prec",
           "est frauds", "frauds", "prec err", "recall err")  # fmt: skip


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def decisions(y: np.ndarray, days: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """The decision and CBPE figures of one score on the test rows (see the module)."""
    y = np.asarray(y, dtype=bool)
    flagged, declined = score >= REVIEW, score >= DECLINE
    out = {
        "flagged": float(flagged.sum()),
        "prec": _ratio((flagged & y).sum(), flagged.sum()),
        "recall": _ratio((flagged & y).sum(), y.sum()),
        "declined": float(declined.sum()),
        "dec prec": _ratio((declined & y).sum(), declined.sum()),
        "est frauds": float(np.clip(score, 0, 1).sum()),
        "frauds": float(y.sum()),
    }
    errors: dict[str, list[float]] = {"prec": [], "recall": []}
    for d in np.unique(days):
        on = days == d
        est = estimate(score[on], REVIEW)
        f, yy = flagged[on], y[on]
        real = {"prec": _ratio((f & yy).sum(), f.sum()), "recall": _ratio((f & yy).sum(), yy.sum())}
        for m, got in (("prec", est.precision), ("recall", est.recall)):
            if math.isfinite(got) and math.isfinite(real[m]):
                errors[m].append(abs(got - real[m]))
    out["prec err"] = float(np.mean(errors["prec"])) if errors["prec"] else math.nan
    out["recall err"] = float(np.mean(errors["recall"])) if errors["recall"] else math.nan
    return out


def rows(y: np.ndarray, days: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, Any]:
    """:func:`decisions` of each score of :data:`SCORES` present in ``scores``."""
    return {k: decisions(y, days, scores[k]) for k in SCORES if k in scores}


def print_table(results: dict[int, dict[str, Any]]) -> None:
    """Per seed and score, then the mean over seeds."""
    head = "".join(f"{c:>11}" for c in COLUMNS)
    print(f"\ndecisions (review >= {REVIEW}, decline >= {DECLINE}) and CBPE at {REVIEW}, "
          "test week; prec/recall err: mean over days of |CBPE estimate - realised|")  # fmt: skip
    print(f"{'seed':>5}  {'score':<16}{head}")
    for seed, by_score in results.items():
        for name, vals in by_score.items():
            print(f"{seed:>5}  {name:<16}" + "".join(f"{vals[c]:11.3f}" for c in COLUMNS))
    for name in SCORES:
        vals = [r[name] for r in results.values() if name in r]
        if vals:
            mean = {c: np.nanmean([v[c] for v in vals]) for c in COLUMNS}
            print(f"{'mean':>5}  {name:<16}" + "".join(f"{mean[c]:11.3f}" for c in COLUMNS))


def main() -> None:
    """The table of the last runs of the reported seeds (from the cache)."""
    from bench.quality_replay import CACHE, TAG
    from bench.quality_seeds import REPORTED

    results = {}
    for seed, n in REPORTED:
        path = CACHE / f"decisions-{TAG}{seed}-{n}.json"
        if path.exists():
            results[seed] = json.loads(path.read_text())
    print_table(results)


if __name__ == "__main__":
    main()
