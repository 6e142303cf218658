"""A panel of real series the installed packages ship, and scores relative to seasonal naive.

Every series comes from a file inside an installed package (River's datasets, statsmodels'
datasets): nothing is downloaded. The panel is split in two: the series the forecasters
were tuned on (``TUNE``: AirlinePassengers, WaterFlow, the euro-area electrical equipment
orders of issue 18, US real GDP) and the series that are only reported (``REPORT``), which
no parameter was chosen on.

The yardstick is the seasonal naive forecast (the value one season before the target, the
last value for a series without season): per horizon h, MAE of the system over MAE of
seasonal naive on the same origins (MASE-style; < 1 beats it).

``python -m bench.forecast_panel`` runs the panel in-process through
:class:`~models.forecast.series.SeriesForecaster` (the code the worker runs per point), with CPU
time per point; ``make bench-forecast`` runs it through the whole system. ``--tuning`` runs
only the tuning series and the simulator series of ``make bench-forecast`` (seeds
``RW_BENCH_SEEDS``, default 1,2,3), in-process: what a change may be chosen on. ``--wide``
runs the tuning series and the wider tuning set of :mod:`bench.forecast_tuning` (23
quarterly and yearly series, none reported) and prints geometric means per horizon.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import numpy as np
from river import datasets

from bench import forecast_tuning
from riverwatch.models.forecast.evaluate import Steps, score
from riverwatch.models.forecast.series import ForecastConfig, SeriesForecaster
from riverwatch.models.forecast.state import dump_state
from riverwatch.simulator.series import SeriesConfig, SeriesSimulator

HORIZONS = (1, 3, 6, 12)
START = 11  # first scored origin (after 12 points), as in River's evaluation
Series = tuple[list[float], list[float]]  # epoch timestamps, values
SEEDS = [int(s) for s in os.environ.get("RW_BENCH_SEEDS", "1,2,3").split(",")]
SIM_POINTS = int(os.environ.get("RW_BENCH_SIM_POINTS", "4320"))


def _epoch(year: int, month: int = 1, day: int = 1) -> float:
    return datetime(year, month, day, tzinfo=UTC).timestamp()


def _river(name: str) -> Series:
    if name == "airline":
        rows = list(datasets.AirlinePassengers())
        return [x["month"].replace(tzinfo=UTC).timestamp() for x, _ in rows], [
            float(y) for _, y in rows
        ]
    if name == "waterflow":
        rows = list(datasets.WaterFlow())
        return [x["Time"].timestamp() for x, _ in rows], [float(y) for _, y in rows]
    rows = list(datasets.TrumpApproval())  # daily; ordinal dates
    day0 = datetime(1, 1, 1, tzinfo=UTC).timestamp() - 86_400.0
    return [day0 + 86_400.0 * x["ordinal_date"] for x, _ in rows], [float(y) for _, y in rows]


def _statsmodels(name: str) -> Series:
    from statsmodels import datasets as sm  # a dependency of evidently (and of dev)

    if name == "elec_equip":
        from statsmodels.datasets.elec_equip import data as elec

        frame = elec.load().data
        return [_epoch(d.year, d.month) for d in frame.index], frame.iloc[:, 0].tolist()
    if name == "elnino":
        frame = sm.elnino.load_pandas().data
        ts, ys = [], []
        for _, row in frame.iterrows():
            for m, v in enumerate(row.iloc[1:13].tolist(), start=1):
                ts.append(_epoch(int(row["YEAR"]), m))
                ys.append(float(v))
        return ts, ys
    if name == "co2":  # weekly, a few weeks missing: interpolated, as statsmodels' examples do
        frame = sm.co2.load_pandas().data["co2"].interpolate()
        return [d.replace(tzinfo=UTC).timestamp() for d in frame.index], frame.tolist()
    if name == "sunspots":
        frame = sm.sunspots.load_pandas().data
        return [_epoch(int(y)) for y in frame["YEAR"]], frame["SUNACTIVITY"].tolist()
    if name == "nile":
        frame = sm.nile.load_pandas().data
        return [_epoch(int(y)) for y in frame["year"]], frame["volume"].tolist()
    source, _, column = name.partition(".")
    frame = (sm.macrodata if source == "macro" else sm.interest_inflation).load_pandas().data
    ts = [
        _epoch(int(y), 3 * int(q) - 2) for y, q in zip(frame["year"], frame["quarter"], strict=True)
    ]
    return ts, frame[column].astype(float).tolist()


# name -> (package, loader, period the calendar detects)
PANEL: dict[str, tuple[str, Callable[[], Series], int]] = {
    "airline": ("river", lambda: _river("airline"), 12),
    "waterflow": ("river", lambda: _river("waterflow"), 24),
    "elec_equip": ("statsmodels", lambda: _statsmodels("elec_equip"), 12),
    "macro.realgdp": ("statsmodels", lambda: _statsmodels("macro.realgdp"), 4),
    "elnino": ("statsmodels", lambda: _statsmodels("elnino"), 12),
    "co2": ("statsmodels", lambda: _statsmodels("co2"), 52),
    "sunspots": ("statsmodels", lambda: _statsmodels("sunspots"), 1),
    "nile": ("statsmodels", lambda: _statsmodels("nile"), 1),
    "macro.cpi": ("statsmodels", lambda: _statsmodels("macro.cpi"), 4),
    "macro.unemp": ("statsmodels", lambda: _statsmodels("macro.unemp"), 4),
    "macro.realinv": ("statsmodels", lambda: _statsmodels("macro.realinv"), 4),
    "macro.tbilrate": ("statsmodels", lambda: _statsmodels("macro.tbilrate"), 4),
    "inflation.Dp": ("statsmodels", lambda: _statsmodels("inflation.Dp"), 4),
    "trump_approval": ("river", lambda: _river("trump"), 7),
}
TUNE = ("airline", "waterflow", "elec_equip", "macro.realgdp")
REPORT = tuple(name for name in PANEL if name not in TUNE)


def naive_forecasts(values: Sequence[float], period: int, horizon: int) -> dict[int, Steps]:
    """The seasonal naive forecast from every origin with a full season behind it."""
    m = max(period, 1)
    out: dict[int, Steps] = {}
    for origin in range(m - 1, len(values)):
        vs = [values[origin + h - m * math.ceil(h / m)] for h in range(1, horizon + 1)]
        out[origin] = [(v, v, v) for v in vs]
    return out


def relative(
    values: Sequence[float], forecasts: Mapping[int, Steps], period: int
) -> dict[str, dict[int, float]]:
    """Per horizon: MAE relative to seasonal naive (same origins), coverage, MAE, scored."""
    start = max(START, period - 1)  # origins where the naive forecast exists too
    ours = score(values, forecasts, HORIZONS, start)
    naive = score(values, naive_forecasts(values, period, max(HORIZONS)), HORIZONS, start)
    rel = {h: ours.mae[h] / naive.mae[h] for h in ours.mae if naive.mae.get(h)}
    return {"rel": rel, "coverage": ours.coverage, "mae": ours.mae, "naive": naive.mae}


def run_in_process(
    series: Series, config: ForecastConfig
) -> tuple[dict[int, Steps], float, int | None, int]:
    """Forecasts per origin from a SeriesForecaster, its CPU seconds per point, its period,
    and the size in bytes of its snapshot (``dump_state``, what the worker stores in Redis)
    after the last point."""
    f = SeriesForecaster("panel", config)
    out: dict[int, Steps] = {}
    cpu = time.process_time()
    for i, (t, y) in enumerate(zip(*series, strict=True)):
        up = f.update(t, y)
        if up is not None and up.steps:
            out[i] = [(s.lower, s.value, s.upper) for s in up.steps]
    period = f.calendar.period if f.calendar else None
    spent = (time.process_time() - cpu) / len(series[0])
    return out, spent, period, len(dump_state(f))


def table(
    results: Mapping[str, Mapping[str, dict[int, float]]],
    cost: Mapping[str, float],
    size: Mapping[str, int],
) -> str:
    """The README's Markdown table: per series and horizon relative MAE, coverage, cost, and
    the snapshot's size."""
    hs = " | ".join(f"MAE/naive +{h}" for h in HORIZONS)
    cs = " | ".join(f"cov +{h}" for h in HORIZONS)
    lines = [
        f"| series | set | points | {hs} | {cs} | µs/point | snapshot KB |",
        "|---" * (5 + 2 * len(HORIZONS)) + "|",
    ]
    for name, r in results.items():
        role = "report" if name in REPORT else "tuned"
        rel = " | ".join(_f(r["rel"].get(h)) for h in HORIZONS)
        cov = " | ".join(_f(r["coverage"].get(h)) for h in HORIZONS)
        n = int(r["points"][0])
        us, kb = cost[name] * 1e6, size[name] / 1000
        lines.append(f"| {name} | {role} | {n} | {rel} | {cov} | {us:.0f} | {kb:.0f} |")
    tuned = [n for n in results if n not in REPORT]
    for role, names in (("tuned", tuned), ("report", REPORT)):
        got = [results[n] for n in names if n in results]
        if got:
            rel = " | ".join(_f(_median(r["rel"].get(h) for r in got)) for h in HORIZONS)
            cov = " | ".join(_f(_median(r["coverage"].get(h) for r in got)) for h in HORIZONS)
            lines.append(f"| **median, {role}** | | | {rel} | {cov} | | |")
    return "\n".join(lines)


def _median(xs: object) -> float | None:
    got = [x for x in xs if x is not None]  # type: ignore[attr-defined]
    return statistics.median(got) if got else None


def _f(x: float | None) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.2f}"


def sim_series(seed: int) -> tuple[list[float], list[float], list[bool]]:
    """One simulator series of ``make bench-forecast`` (minute points, daily and weekly cycles,
    injected anomalies): timestamps, values and the anomalies' ground truth."""
    cfg = SeriesConfig(
        series_id=f"bench.sim.s{seed}", seed=seed, n_points=SIM_POINTS, anomaly_prob=0.005
    )
    events = list(SeriesSimulator(cfg).events())
    return (
        [e.at for e in events],
        [e.payload["value"] for e in events],
        [bool(e.anomaly) for e in events],
    )


def simulator(seed: int, config: ForecastConfig | None = None) -> str:
    """A simulator series run in-process, scored as ``make bench-forecast`` scores it."""
    ts, ys, truth = sim_series(seed)
    f = SeriesForecaster(f"bench.sim.s{seed}", config or ForecastConfig())
    out: dict[int, Steps] = {}
    flags = [False] * len(ys)
    cpu = time.process_time()
    for i, (t, y) in enumerate(zip(ts, ys, strict=True)):
        up = f.update(t, y)
        if up is not None and up.steps:
            out[i] = [(p.lower, p.value, p.upper) for p in up.steps]
            flags[i] = up.anomaly
    us = (time.process_time() - cpu) / len(ys) * 1e6
    s = score(ys, out, HORIZONS, START, flags, truth)
    return (
        f"sim seed {seed}: MAE +1 {s.mae[1]:.3f} +12 {s.mae[12]:.3f}, cov +1 "
        f"{s.coverage[1]:.3f} +12 {s.coverage[12]:.3f}, precision {s.precision:.2f} recall "
        f"{s.recall:.2f}, {us:.0f} us/point, snapshot {len(dump_state(f)) / 1000:.0f} KB"
    )


def main() -> None:
    """Run the panel in-process and print the table and the issue's targets (``--tuning``:
    only the tuning series, then the simulator seeds; ``--wide``: the tuning series and the
    wider tuning set of bench.forecast_tuning, with geometric means; ``RW_BENCH_FORECAST``:
    JSON of ForecastConfig fields to change, for trying a setting)."""
    tuning = "--tuning" in sys.argv[1:]
    wide = "--wide" in sys.argv[1:]
    config = ForecastConfig(**json.loads(os.environ.get("RW_BENCH_FORECAST", "{}")))
    panel = {n: PANEL[n] for n in TUNE} | forecast_tuning.wide() if wide else PANEL
    results, cost, size = {}, {}, {}
    for name, (_, load, period) in panel.items():
        if tuning and name not in TUNE:
            continue
        series = load()
        forecasts, cost[name], detected, size[name] = run_in_process(series, config)
        assert detected == period, (name, detected, period)  # the yardstick's season
        results[name] = relative(series[1], forecasts, period) | {"points": {0: len(series[0])}}
        print(name, {h: round(v, 3) for h, v in results[name]["rel"].items()}, flush=True)
    print(table(results, cost, size))
    if wide:
        print(
            "\n".join(forecast_tuning.summary({n: r["rel"] for n, r in results.items()}, HORIZONS))
        )
        print(f"median us/point {statistics.median(cost.values()) * 1e6:.0f}")
        return
    if tuning:
        for seed in SEEDS:
            print(simulator(seed, config), flush=True)
        return
    print("\n".join(targets(results)))


def targets(results: Mapping[str, Mapping[str, dict[int, float]]]) -> list[str]:
    """Issue 18's targets, on the report-only series (and AirlinePassengers)."""
    report = [results[n] for n in REPORT]
    out = []
    for h in HORIZONS:
        med = statistics.median(r["rel"][h] for r in report)
        cov = [r["coverage"][h] for r in report]
        inside = sum(0.85 <= c <= 0.95 for c in cov)
        out.append(
            f"report-only +{h}: median MAE/naive {med:.2f} (target <= 0.90); coverage "
            f"{min(cov):.2f}..{max(cov):.2f}, median {statistics.median(cov):.2f}, "
            f"{inside}/{len(cov)} series within 0.85-0.95"
        )
    worse = [n for n in REPORT if results[n]["rel"][1] > 1.0]
    out.append(f"report-only series worse than seasonal naive at +1: {worse or 'none'}")
    air = results["airline"]["mae"]
    out.append(f"AirlinePassengers: MAE +1 {air[1]:.2f} (target <= 11), +12 {air[12]:.2f} (<= 30)")
    return out


if __name__ == "__main__":
    main()
