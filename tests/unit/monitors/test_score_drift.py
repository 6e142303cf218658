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


def test_flagged_share_counts_a_cards_spree_as_one_cluster() -> None:
    # The demo's day 41 (seed 21, before its episode): 8 of 505 events flagged against 0.28%
    # in the reference week. When most of them are one compromised card's, that is one
    # customer's spree, not a rise of the flagged share; spread over eight cards it is one.
    mon = ScoreDriftMonitor(np.r_[np.full(10, 0.9), np.full(3490, 0.01)], threshold=0.5)
    window = np.r_[np.full(8, 0.9), np.full(497, 0.01)]
    spree = ["card-86"] * 6 + ["card-1", "card-2"] + [f"c{i}" for i in range(497)]
    spread = [f"card-{i}" for i in range(8)] + [f"c{i}" for i in range(497)]
    one = mon.compare(window, clusters=spree)
    many = mon.compare(window, clusters=spread)
    assert mon.compare(window).flagged_drifted  # every event independent: "drifted"
    assert many.flagged_drifted and many.flagged_design_effect == pytest.approx(1.0, abs=0.01)
    assert not one.flagged_drifted and one.flagged_design_effect > 3
    assert one.flagged == many.flagged and one.flagged_z < many.flagged_z / 1.5


def test_flagged_share_without_a_card_counts_the_event_alone() -> None:
    mon = ScoreDriftMonitor(np.r_[np.full(10, 0.9), np.full(3490, 0.01)], threshold=0.5)
    window = np.r_[np.full(8, 0.9), np.full(497, 0.01), math.nan]
    alone = mon.compare(window, clusters=[None] * 506)
    assert alone.flagged_design_effect == pytest.approx(1.0, abs=0.01)
    assert alone.flagged_z == pytest.approx(mon.compare(window).flagged_z, rel=0.01)
