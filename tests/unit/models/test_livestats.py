"""models.livestats: a large batch's figures (counted with numpy) equal the loop's."""

from __future__ import annotations

import numpy as np
import pytest

from riverwatch.models import livestats
from riverwatch.models.livestats import VECTOR_FROM, batch_stats


def batch(rng: np.random.Generator, n: int) -> tuple[list[float], list[str], list[float]]:
    scores = rng.choice(
        [rng.uniform(0, 1), 0.0, 1.0, 0.1, 0.9, 0.99999, -0.05, -3.0, 7.0, 1e300, -1e300,
         float("nan"), float("inf"), -float("inf"), -0.0], n
    ).tolist()  # fmt: skip
    scores = [float(rng.uniform(0, 1)) if rng.random() < 0.6 else s for s in scores]
    decisions = rng.choice(["approve", "review", "decline"], n).tolist()
    bounds = [*livestats.LATENCY_BOUNDS_MS, 0.0, -1.0, 1e9, float("nan"), float("inf")]
    lat = [float(rng.exponential(40)) if rng.random() < 0.7 else float(rng.choice(bounds))
           for _ in range(int(rng.integers(0, n + 1)))]  # fmt: skip
    return scores, decisions, lat


@pytest.mark.parametrize("seed", range(20))
def test_numpy_counts_equal_the_loop(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    scores, decisions, lat = batch(rng, int(rng.integers(VECTOR_FROM, 600)))
    alerts = int(rng.integers(0, 5))
    fast = batch_stats(scores, decisions, lat, alerts)
    monkeypatch.setattr(livestats, "VECTOR_FROM", 10**9)  # the loop, for the same batch
    slow = batch_stats(scores, decisions, lat, alerts)
    assert fast == slow
    assert set(map(type, fast.values())) == {float}


def test_both_ways_are_taken() -> None:
    many = batch_stats([0.5] * VECTOR_FROM, ["review"] * VECTOR_FROM, [3.0], 0)
    few = batch_stats([0.5], ["review"], [3.0], 0)
    assert many["s:5"] == VECTOR_FROM and few["s:5"] == 1.0 and many["lat:0"] == 1.0
