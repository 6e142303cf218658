"""A champion's training window as the monitor's reference (streams.monitor.data.FrameRows):
rows made as they are read give the very reference the same rows as dicts gave (the sample,
the feature, score and volume references, the label-shift reference, the warm-up cut), and
setting it makes only the sampled rows."""

from __future__ import annotations

import pickle

import numpy as np
import orjson
import pandas as pd
import pytest

from riverwatch.models.features import FEATURE_NAMES
from riverwatch.monitors.concept import ConceptDriftMonitor
from riverwatch.monitors.core import MonitorCore
from riverwatch.monitors.core.config import CoreConfig
from riverwatch.streams.monitor.data import FrameRows

DAY = 86_400.0


def training_window(n: int, seed: int) -> pd.DataFrame:
    """Offline-store rows of a champion's training window: days 20-41, 1% fraud."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.lognormal(0, 0.5, (n, len(FEATURE_NAMES))), columns=FEATURE_NAMES)
    regions = np.array(["north", "south", "east"])[rng.integers(3, size=n)]
    return df.assign(
        score=rng.beta(1, 12, n),
        groups=[
            orjson.dumps({"region": r}).decode() if i % 7 else "" for i, r in enumerate(regions)
        ],
        epoch=np.sort(rng.uniform(20 * DAY, 41 * DAY, n)),
        label=(rng.random(n) < 0.01).astype(int),
    )


def as_dicts(rows: FrameRows) -> list[dict]:
    """The rows as the list of dicts the reference was given before FrameRows."""
    return [rows[i] for i in range(len(rows))]


def core(first: float | None) -> MonitorCore:
    c = MonitorCore(CoreConfig(features=FEATURE_NAMES, drift_columns=FEATURE_NAMES[:6]),
                    ConceptDriftMonitor())  # fmt: skip
    c.first = first
    return c


@pytest.mark.parametrize("n", [3_000, 12_000], ids=["all-kept", "sampled"])
@pytest.mark.parametrize("first", [None, 0.0], ids=["ready", "warm-up-cut"])
def test_frame_rows_set_the_same_reference_as_their_dicts(n: int, first: float | None) -> None:
    rows = FrameRows(training_window(n, seed=n), FEATURE_NAMES)
    a, b = core(first), core(first)
    assert a.set_reference(as_dicts(rows), "champion c1")
    assert b.set_reference(rows, "champion c1")
    assert a.ref_info == b.ref_info and a.ref_info["rows"] == min(5000, a.ref_info["rows"])
    assert a.label_rates.ref == b.label_rates.ref and a.label_rates.ref[1] > 0
    for part in ("features", "scores_ref", "volume", "ref_estimate"):
        assert pickle.dumps(getattr(a, part)) == pickle.dumps(getattr(b, part)), part
    if first is not None:  # the warm-up's first 30 days cut: days 30-41 kept
        assert a.ref_info["from"] >= "1970-01-31"


def test_setting_it_makes_only_the_sampled_rows() -> None:
    made: list[int] = []

    class Counted(FrameRows):
        def __getitem__(self, i):  # type: ignore[no-untyped-def,override]
            out = super().__getitem__(i)
            made.append(1)
            return out

    rows = Counted(training_window(12_000, seed=3), FEATURE_NAMES)
    c = core(None)
    assert c.set_reference(rows, "champion c1")
    # one pass for the labels (each row made and dropped) and the 5,000 sampled kept
    assert len(made) == 12_000 + 5_000
