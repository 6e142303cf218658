"""Prediction (score) drift: PSI and Wasserstein (riverwatch.monitors.drift)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from riverwatch.monitors.drift import ScoreDriftMonitor

DAY = 86_400.0


def test_score_drift_psi_and_wasserstein_match_their_definitions() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.beta(2, 5, 20_000), rng.beta(2.6, 5, 3000)
    mon = ScoreDriftMonitor(ref, bins=10)
    got = mon.compare(cur)
    edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    r = np.histogram(ref, bins=[-np.inf, *edges, np.inf])[0] / len(ref)
    c = np.histogram(cur, bins=[-np.inf, *edges, np.inf])[0] / len(cur)
    assert got.psi == pytest.approx(np.sum((c - r) * np.log(c / r)), rel=1e-9)
    assert got.wasserstein == pytest.approx(wasserstein_distance(ref, cur), rel=1e-12)
    assert got.bins == 10 and got.window_rows == 3000
    assert mon.compare(rng.beta(2, 5, 3000)).psi < 0.02  # same distribution: small PSI
    assert got.drifted == (got.psi >= 0.2)


def test_score_drift_handles_ties_nan_and_empty_windows() -> None:
    ref = np.r_[np.zeros(9000), np.linspace(0.01, 1, 1000)]  # most scores tie at 0
    mon = ScoreDriftMonitor(ref, bins=10, max_rows=5000)
    assert mon.reference.size == 5000 and mon.edges.size < 9
    out = mon.compare([0.0, 0.5, math.nan, math.inf, 0.9])
    assert out.window_rows == 3 and math.isfinite(out.psi) and out.drifted
    empty = mon.compare([])
    assert math.isnan(empty.psi) and not empty.drifted
    assert json.loads(json.dumps(empty.to_dict(), allow_nan=False))["psi"] is None
    with pytest.raises(ValueError):
        ScoreDriftMonitor([math.nan])
