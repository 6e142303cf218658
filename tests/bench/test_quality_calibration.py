"""bench/quality_calibration: decisions at the thresholds and the CBPE estimate's error."""

from __future__ import annotations

import numpy as np
import pytest

from bench.quality_calibration import decisions


def test_decisions_and_the_estimate_error_of_calibrated_and_uncalibrated_scores() -> None:
    rng = np.random.default_rng(0)
    days = np.repeat([49, 50], 20_000)
    truth = rng.beta(0.3, 6.0, len(days))
    y = rng.uniform(size=len(days)) < truth
    good = decisions(y, days, truth)  # the scores are the fraud probabilities
    flagged = truth >= 0.5
    assert good["flagged"] == flagged.sum() and good["frauds"] == y.sum()
    assert good["prec"] == pytest.approx((y & flagged).sum() / flagged.sum())
    assert good["recall"] == pytest.approx((y & flagged).sum() / y.sum())
    assert good["declined"] == (truth >= 0.8).sum()
    assert good["est frauds"] == pytest.approx(y.sum(), rel=0.05)
    assert good["prec err"] < 0.03 and good["recall err"] < 0.05
    bad = decisions(y, days, truth**2)  # ranks the same, far too low
    assert bad["prec err"] > 0.05 > good["prec err"] and bad["est frauds"] < 0.5 * y.sum()
