"""The drift benchmark's scoring of delays, misses and false alarms (bench/drift.py)."""

from __future__ import annotations

import math

DAY = 86_400.0


def test_drift_benchmark_scores_delays_misses_and_false_alarms() -> None:
    from bench.drift import ACCEPT, GRADUAL, WARMUP, positions, score

    p1, p2, p3 = positions()
    length = p3 + 25_000
    abrupt = score([p1 - 10, p1 + 120, p1 + 300, p3 + ACCEPT + 1], 1, length)
    assert abrupt["delays"] == [120, math.inf, math.inf]  # p2 missed; p3 detected too late
    assert abrupt["false"] == 2  # one before the drift, one after its window
    assert abrupt["stable"] == length - WARMUP - 3 * ACCEPT
    gradual = score([p2 - GRADUAL + 1], GRADUAL, length)
    assert gradual["delays"][1] == -GRADUAL + 1 and gradual["false"] == 0
