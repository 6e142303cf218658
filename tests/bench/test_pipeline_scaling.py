"""The pipeline benchmark's scaling line compares each scorer count with one scorer of the same
code, whichever ran first (the ladders run in ABBA order, so two scorers may come first)."""

from __future__ import annotations

from bench.openloop import Run
from bench.pipeline import scaling


def _sat(scored: int, seconds: float, scorer_cpu: float) -> Run:
    return Run(float("inf"), scored, scored, scored / seconds, {}, {"scorer": scorer_cpu})


def test_two_scorers_against_one_in_either_order() -> None:
    tables = [
        ("this code, 2 scorers", [_sat(10_000, 2.0, 1.0)]),  # 5,000 tx/s, 10,000 per CPU-s
        ("this code", [_sat(10_000, 4.0, 0.8)]),  # 2,500 tx/s, 12,500 per CPU-s
        ("this code, 2 scorers", [_sat(10_000, 2.0, 1.0)]),
        ("this code", [_sat(10_000, 4.0, 0.8)]),
    ]
    out = scaling(tables)
    assert "this code: 2,500 tx/s (1.00x), 12,500 tx per scorer CPU-second (1.00x)" in out[2]
    assert "2 scorers: 5,000 tx/s (2.00x), 10,000 tx per scorer CPU-second (0.80x)" in out[1]
