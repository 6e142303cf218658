"""The pipeline benchmark's lines: scaling compares each scorer count with one scorer of the same
code, whichever ran first (the ladders run in ABBA order, so two scorers may come first); the
backfill is compared with the saturation runs on both sides of it."""

from __future__ import annotations

from bench.openloop import Run
from bench.pipeline_report import fmt, scaling


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


def test_the_backfill_against_saturation_before_and_after_it() -> None:
    lat = {k: 1.0 for k in ("p50", "p90", "p99", "p99.9", "max")}
    runs = [
        Run(float("inf"), 100, 100, 10_000.0, lat, {"scorer": 1.0}),
        Run(-1.0, 100, 100, 7_000.0, lat, {"scorer": 1.0}),
        Run(-2.0, 100, 100, 8_000.0, lat, {"scorer": 1.0}),
    ]
    out = fmt(runs, 1e6)
    assert [ln.split()[0] for ln in out[1:4]] == ["saturation", "backfill", "sat."]
    assert "backfill / saturation: 0.70 before it, 0.88 after it, 0.78 of their mean" in out[-1]
