"""Data drift through Evidently (monitors.drift is the only module that imports it)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from riverwatch.monitors.drift import DataDriftMonitor


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3 + shift, 1.0, n),
            "hour": rng.integers(0, 24, n),
            "is_night": (rng.random(n) < 0.2).astype(int),
            "channel": rng.choice(["web", "pos", "atm"], n, p=[0.5, 0.4, 0.1]),
        }
    )


@pytest.fixture(scope="module")
def monitor() -> DataDriftMonitor:
    return DataDriftMonitor(_frame(np.random.default_rng(0), 8000), max_rows=3000)


def test_reference_and_window_are_sampled_to_max_rows(monitor: DataDriftMonitor) -> None:
    assert len(monitor.reference) == 3000
    assert monitor.kinds == {
        "amount": "numerical",
        "hour": "numerical",
        "is_night": "numerical",
        "channel": "categorical",
    }
    out = monitor.compare(_frame(np.random.default_rng(1), 4000))
    assert out.window_rows == 3000 and out.reference_rows == 3000


def test_same_distribution_does_not_drift(monitor: DataDriftMonitor) -> None:
    out = monitor.compare(_frame(np.random.default_rng(2), 2000))
    assert [c.column for c in out.columns] == ["amount", "hour", "is_night", "channel"]
    assert out.n_drifted == 0 and out.share_drifted == 0.0 and not out.dataset_drift
    by = {c.column: c for c in out.columns}
    # Evidently's choice above 1000 reference rows: Wasserstein (normed) and Jensen-Shannon
    assert by["amount"].method.startswith("Wasserstein") and by["amount"].threshold == 0.1
    assert by["channel"].method.startswith("Jensen-Shannon")
    assert all(0 <= c.score < c.threshold for c in out.columns)


def test_shifted_columns_drift_and_the_share_follows(monitor: DataDriftMonitor) -> None:
    rng = np.random.default_rng(3)
    cur = _frame(rng, 2000, shift=1.0)
    cur["channel"] = rng.choice(["web", "pos", "atm"], 2000, p=[0.1, 0.2, 0.7])
    out = monitor.compare(cur)
    assert {c.column for c in out.columns if c.drifted} == {"amount", "channel"}
    assert out.n_drifted == 2 and out.share_drifted == 0.5 and out.dataset_drift
    assert json.loads(json.dumps(out.to_dict()))["columns"][0]["column"] == "amount"


def test_configured_method_and_unusable_columns() -> None:
    rng = np.random.default_rng(4)
    ref = _frame(rng, 500)
    ref["empty"] = np.nan
    mon = DataDriftMonitor(ref, categorical=["is_night"], num_method="psi", threshold=0.3)
    cur = _frame(rng, 300)
    cur["hour"] = np.nan  # nothing to compare in this window
    cur["empty"] = 1.0
    out = mon.compare(cur)
    assert out.skipped == ["hour", "empty"]
    by = {c.column: c for c in out.columns}
    assert by["amount"].method == "psi" and by["amount"].threshold == 0.3
    assert by["is_night"].kind == "categorical"
    with pytest.raises(ValueError):
        DataDriftMonitor(pd.DataFrame({"a": []}))
