"""The simulator's label shift as a step (``Shift("fraud_step", ...)``) against the inflow one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from riverwatch.simulator import Shift, SimConfig
from riverwatch.simulator.days import DayArrays, DayGenerator
from riverwatch.simulator.population import build_population

DAY, DAYS = 30, 60  # the shift's day; the days simulated (the stock is full after 28 days)


def _days(*shifts: Shift, seed: int = 0) -> tuple[DayGenerator, list[DayArrays]]:
    cfg = SimConfig(seed=seed, n_customers=1500, n_terminals=3000, n_days=DAYS, shifts=shifts)
    gen = DayGenerator(cfg, build_population(cfg.n_customers, cfg.n_terminals, cfg.radius, seed))
    return gen, [gen.day(d) for d in range(DAYS)]


def _stock(gen: DayGenerator) -> tuple[int, int]:
    """Compromised terminals and customers now, the batch added last (today's) left out."""
    return tuple(  # type: ignore[return-value]
        len(np.unique(np.concatenate(list(s)[:-1]))) for s in (gen._terminals, gen._customers)
    )


def _frauds(days: list[DayArrays], first: int, last: int) -> int:
    """Frauds of the compromised terminals and cards (scenarios 2, 3) on days first..last."""
    return sum(int(np.isin(a.scenario, (2, 3)).sum()) for a in days[first : last + 1])


@pytest.fixture(scope="module")
def runs() -> dict[str, list[DayArrays]]:
    return {
        "none": _days()[1],
        "inflow": _days(Shift("fraud", DAY, 3.0))[1],
        "step": _days(Shift("fraud_step", DAY, 3.0))[1],
    }


def test_step_multiplies_the_stock_of_compromised_on_the_day() -> None:
    cfg = SimConfig(seed=0, n_customers=1500, n_terminals=3000, n_days=DAYS)
    pop = build_population(cfg.n_customers, cfg.n_terminals, cfg.radius, 0)
    plain = DayGenerator(cfg, pop)
    step = DayGenerator(replace(cfg, shifts=(Shift("fraud_step", DAY, 3.0),)), pop)
    for d in range(DAY + 1):
        plain.day(d)
        step.day(d)
        if d == DAY - 1:
            assert _stock(step) == _stock(plain)
    before = _stock(plain)
    assert min(before) > 5
    assert _stock(step) == (3 * before[0], 3 * before[1])


def test_prevalence_steps_up_on_the_day_and_stays_up(runs) -> None:
    ref = _frauds(runs["step"], DAY - 5, DAY - 1)
    assert ref == _frauds(runs["none"], DAY - 5, DAY - 1) > 0
    for name, lo, hi in (("none", 0.6, 1.5), ("inflow", 0.8, 1.6), ("step", 2.2, 4.0)):
        first_days = _frauds(runs[name], DAY, DAY + 2) / (ref * 3 / 5)
        assert lo < first_days < hi, (name, first_days)
    # The inflow is multiplied too, so the stock does not fall back as the step's batches expire.
    late = _frauds(runs["step"], DAY + 25, DAY + 29) / _frauds(runs["none"], DAY + 25, DAY + 29)
    assert late > 2.0


def test_step_keeps_the_traffic_and_the_days_before_it(runs) -> None:
    for base, step in zip(runs["none"], runs["step"], strict=True):
        for col in ("t", "cust", "term", "online", "category"):
            assert np.array_equal(getattr(base, col), getattr(step, col))
    for base, step in zip(runs["none"][:DAY], runs["step"][:DAY], strict=True):
        assert np.array_equal(base.amount, step.amount)
        assert np.array_equal(base.scenario, step.scenario)
        assert np.array_equal(base.label, step.label)


@pytest.mark.parametrize("kw", [{"ramp_days": 3}, {"factor": 0.5}])
def test_a_step_must_be_a_step_up(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="step up"):
        Shift("fraud_step", 5, **{"factor": 3.0, **kw})  # type: ignore[arg-type]
