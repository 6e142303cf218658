"""A time window's rows are bounded: beyond ``max_rows`` it keeps a uniform sample, while its
count, its volumes per segment and its data-quality tallies stay exact."""

from __future__ import annotations

from typing import Any

from riverwatch.models.features import FEATURE_NAMES
from riverwatch.monitors.concept import ConceptDriftMonitor
from riverwatch.monitors.core import MonitorCore
from riverwatch.monitors.core.config import CoreConfig
from riverwatch.monitors.dataquality import DataQuality
from riverwatch.monitors.dataquality.config import QualityConfig
from riverwatch.monitors.dataquality.rows import tally_rows
from riverwatch.monitors.policy.config import PolicyConfig
from riverwatch.monitors.windows import TimeWindows
from tests.unit.monitors.test_dataquality import DAY, stream


def test_a_time_window_at_ten_times_its_bound_holds_the_bound_and_the_exact_count() -> None:
    def run(seed: int) -> Any:
        tw = TimeWindows[int](width_s=1000.0, max_rows=100, tally=lambda e: [e % 3], seed=seed)
        closed = [w for t in range(1000) for w in tw.add(t, float(t))]
        assert closed == [] and tw.open_windows == [(0.0, 1000)]
        (win,) = tw.flush()
        return win

    win = run(0)
    assert win.n == 1000 and len(win.events) == 100 and len(win.times) == 100
    assert dict(win.counts or {}) == {0: 334, 1: 333, 2: 333}  # over all 1000
    assert win.meta()["n"] == 1000 and win.meta()["sampled"] == 100
    assert len(set(win.events)) == 100 and win.times == [float(e) for e in win.events]
    # uniform over the window, not its first (mean 49.5) or last 100 events: the mean of 100
    # draws from 0..999 has a standard deviation of ~29 around 499.5
    assert 380 < sum(win.events) / 100 < 620
    assert run(0).events == win.events and run(1).events != win.events  # seeded
    small = TimeWindows[int](width_s=1000.0, max_rows=100)
    for t in range(50):
        small.add(t, float(t))
    (few,) = small.flush()
    assert few.events == list(range(50)) and few.n == 50 and not few.sampled
    assert few.counts is None and "sampled" not in few.meta()


def _core(window_rows: int, results: list[tuple[str, dict[str, Any]]]) -> MonitorCore:
    cfg = CoreConfig(
        features=FEATURE_NAMES,
        drift_columns=("amount", "card_mean_7d"),
        window_size=0,
        window_s=DAY,
        window_rows=window_rows,
        warmup_s=2 * DAY,
        reference_s=5 * DAY,
        policy=PolicyConfig(cooldown_s=0),
    )
    store = lambda kind, result: results.append((kind, result))  # noqa: E731
    return MonitorCore(cfg, ConceptDriftMonitor(), store=store)


def _run(window_rows: int, change: str) -> tuple[list[Any], list[dict[str, Any]]]:
    results: list[tuple[str, dict[str, Any]]] = []
    mon = _core(window_rows, results)
    alerts = []
    rows = stream(3, change)
    for lo in range(0, len(rows), 500):
        alerts += [a for a in mon.scores(rows[lo : lo + 500]).alerts if a.kind == "quality"]
    return alerts, [r for kind, r in results if kind == "drift"]


def _exact(report: dict[str, Any] | None) -> dict[str, Any] | None:
    if report is None:
        return None
    rates = {k: v for k, v in report["rates"].items() if not k.endswith(":out_of_range")}
    found = [f for f in report["findings"] if not f["subject"].endswith(":out_of_range")]
    return {**report, "rates": rates, "findings": found}


def test_sampled_time_windows_judge_volume_and_data_quality_on_exact_counts() -> None:
    for change in ("missing", "silent"):
        full, full_drift = _run(0, change)  # every row kept
        sampled, drift = _run(150, change)  # 1,500 a day: a tenth kept
        assert full, change  # the change is caught ...
        key = lambda a: (a.subject, a.details["window_start"], a.details.get("count"))  # noqa: E731
        assert [key(a) for a in sampled] == [key(a) for a in full], change  # ... alike
        for mine, theirs in zip(drift, full_drift, strict=True):
            assert mine["n"] == theirs["n"] >= 1000 and mine.get("sampled") == 150
            # tallies, rates, partitions, findings; not the out-of-range rates, which are the
            # sample's scaled (and the reference's range is its sample's)
            assert _exact(mine["quality"]) == _exact(theirs["quality"])
            assert mine.get("volume") == theirs.get("volume")  # per segment, observed exactly


def test_data_quality_of_a_sample_with_its_counts_equals_that_of_all_rows() -> None:
    rows = [r for r in stream(4, "missing") if 8 * DAY <= r["epoch"] < 11 * DAY]
    ref = [r for r in stream(4, None) if r["epoch"] < DAY]
    a, b = (DataQuality(QualityConfig(), numeric=()) for _ in range(2))
    for dq in (a, b):
        dq.collect(0.0, DAY)
        dq.window(0.0, DAY, ref, None, {})
    whole = a.window(DAY, 4 * DAY, rows, None, {})
    part = b.window(DAY, 4 * DAY, rows[::10], None, {}, counts=tally_rows(rows), total=len(rows))
    assert whole.report == part.report and whole.findings == part.findings
    assert [f["subject"] for f in whole.findings] == ["channel:missing"]
