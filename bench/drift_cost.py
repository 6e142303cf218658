"""What the monitors cost (the second table of ``python -m bench.drift``): per event, per
window, and the events/s one core sustains with everything on."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from riverwatch.models.features import FEATURE_NAMES
from riverwatch.monitors.concept import ConceptDriftMonitor
from riverwatch.monitors.drift import DataDriftMonitor, ScoreDriftMonitor, load_evidently
from riverwatch.monitors.fairness import FairnessCounts
from riverwatch.monitors.performance import performance
from riverwatch.monitors.windows import CountWindows


def _rate(fn: Callable[[], Any], n: int) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def _per_call(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def cost_table(window: int = 5000) -> None:
    """Per-event and per-window cost of the monitors, and the events/s they sustain."""
    rng = np.random.default_rng(0)
    n = 100_000
    groups = [
        {"age_band": f"a{i % 5}", "sex": "fm"[i % 2], "region": f"r{i % 7}"} for i in range(n)
    ]
    y, p = (rng.random(n) < 0.02).tolist(), (rng.random(n) < 0.05).tolist()
    err = (rng.random(n) < 0.05).astype(float).tolist()
    fc, cdm, cw = FairnessCounts(), ConceptDriftMonitor(), CountWindows[int](window)
    per_event = {
        "fairness update (3 attributes)": _rate(lambda: fc.update_many(groups, y, p), n),
        "concept update (model + 3 groups)": _rate(
            lambda: [cdm.update("m", e, g) for e, g in zip(err, groups, strict=True)], n
        ),
        f"count window add ({window})": _rate(lambda: [cw.add(i, float(i)) for i in range(n)], n),
    }
    cols = list(FEATURE_NAMES)

    def frame(rows: int, shift: float = 0.0) -> pd.DataFrame:
        df = pd.DataFrame(rng.lognormal(shift, 1.0, (rows, len(cols))), columns=cols)
        for c in ("is_weekend", "is_night"):
            df[c] = (rng.random(rows) < 0.3).astype(int)
        df["hour"] = rng.integers(0, 24, rows)
        return df

    t0 = time.perf_counter()
    load_evidently()
    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ddm = DataDriftMonitor(frame(50_000))
    ref_s = time.perf_counter() - t0
    cur = frame(window, 0.05)
    sdm = ScoreDriftMonitor(rng.beta(1, 20, 50_000))
    scores = rng.beta(1, 18, window)
    t = np.sort(rng.uniform(0, 86_400 * 7, window))
    labels, cards = (rng.random(window) < 0.02).astype(int), rng.integers(0, 2000, window)
    wfc = FairnessCounts()
    wfc.update_many(groups[:window], y[:window], p[:window])
    per_window = {
        f"data drift, {len(cols)} features ({window} vs 5000 rows)": _per_call(
            lambda: ddm.compare(cur)
        ),
        "score drift (PSI + Wasserstein)": _per_call(lambda: sdm.compare(scores)),
        "performance + label maturity": _per_call(
            lambda: performance(
                t, scores, labels, cards, as_of=86_400 * 30, horizon_s=86_400 * 7, threshold=0.5
            )
        ),
        "fairness report (3 attributes, 2000 bootstraps)": _per_call(lambda: wfc.report()),
    }
    _print_cost(window, per_event, per_window, import_s, ref_s)


def _print_cost(
    window: int,
    per_event: dict[str, float],
    per_window: dict[str, float],
    import_s: float,
    ref_s: float,
) -> None:
    """The cost tables, and the events/s everything on sustains."""
    print(f"### Monitor cost (window = {window} events)")
    print("| per event | events/s |\n|---|---|")
    for k, v in per_event.items():
        print(f"| {k} | {v:,.0f} |")
    print("\n| per window | seconds |\n|---|---|")
    for k, v in per_window.items():
        print(f"| {k} | {v:.3f} |")
    event_s = sum(1 / v for v in per_event.values())
    window_s = sum(per_window.values())
    print(
        f"\nOnce: Evidently import {import_s:.1f} s, reference (50k rows sampled to 5000) "
        f"{ref_s:.2f} s. "
        f"Sustained, everything on: 1 / ({event_s * 1e6:.1f} us + {window_s:.2f} s / {window}) "
        f"= {1 / (event_s + window_s / window):,.0f} events/s on one core."
    )
