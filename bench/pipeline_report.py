"""bench.pipeline's tables: a line per run, the latency split per stage, the highest rate that
keeps the p99 target, the backfill's ratios and the scaling from one scorer to two."""

from __future__ import annotations

import numpy as np

from bench.openloop import Run

P99_TARGET_MS = 50.0


def _label(r: Run) -> str:
    """A run's name in the table: its offered rate, ``saturation``, ``backfill`` or ``sat. again``
    (saturation after the backfill)."""
    if r.rate == -2.0:
        return "sat. again"
    if r.rate < 0:
        return "backfill"
    return "saturation" if r.rate == float("inf") else f"{r.rate:,.0f}"


def fmt(runs: list[Run], raw: float) -> list[str]:
    """One table line per run."""
    lines = [
        f"  {'offered':>10} {'scored/s':>9} {'p50':>7} {'p90':>7} {'p99':>7} {'p99.9':>7} "
        f"{'max':>7} {'tx/scorer-CPU-s':>15} {'helper us/tx':>12} {'lag s':>5} {'vs raw':>6}"
        f" {'broker us/tx':>12} {'Valkey us/tx':>12}"
    ]
    for r in runs:
        what = _label(r)
        lat = " ".join(f"{r.lat_ms[k]:>7.1f}" for k in ("p50", "p90", "p99", "p99.9", "max"))
        helper, broker, valkey = (
            1e6 * r.cpu_s[k] / r.scored if r.scored and k in r.cpu_s else float("nan")
            for k in ("helper", "broker", "valkey")
        )
        lines.append(
            f"  {what:>10} {r.throughput:>9,.0f} {lat} {r.per_cpu:>15,.0f} {helper:>12.0f} "
            f"{r.helper_lag_s:>5.0f} "
            f"{r.throughput / raw:>6.3f} {broker:>12.0f} {valkey:>12.0f}"
            + (f"  ({r.sent - r.scored} unscored)" if r.scored < r.sent else "")
        )
    for r in runs:
        if r.stage_ms:
            lines.append(
                f"  {_label(r):>10}: send -> scored_at p50 {r.stage_ms['to scored p50']:.1f}, p99 "
                f"{r.stage_ms['to scored p99']:.1f}; scored_at -> reader p50 "
                f"{r.stage_ms['to reader p50']:.1f}, p99 {r.stage_ms['to reader p99']:.1f} (ms)"
            )
    for r in runs:
        for worker, line in r.workers.items():
            lines.append(f"  {_label(r):>10}: {worker}: {line}")
    best = [r.rate for r in runs if 0 < r.rate < float("inf") and r.lat_ms["p99"] <= P99_TARGET_MS
            and r.scored == r.sent]  # fmt: skip
    lines.append(f"  highest offered rate with p99 <= {P99_TARGET_MS:.0f} ms: "
                 f"{max(best):,.0f} tx/s" if best else "  no rate kept p99 <= 50 ms")  # fmt: skip
    thr = {_label(r): r.throughput for r in runs}
    if {"saturation", "backfill", "sat. again"} <= thr.keys():
        bf, before, after = thr["backfill"], thr["saturation"], thr["sat. again"]
        lines.append(
            f"  backfill / saturation: {bf / before:.2f} before it, {bf / after:.2f} after it, "
            f"{2 * bf / (before + after):.2f} of their mean"
        )
    return lines


def scaling(tables: list[tuple[str, list[Run]]]) -> list[str]:
    """Per code and scorer count: saturation throughput and tx per scorer CPU-second over the
    repeats (medians), and each as a ratio to one scorer's."""
    sat: dict[str, list[Run]] = {}
    for label, runs in tables:
        sat.setdefault(label, []).extend(r for r in runs if r.rate == float("inf"))
    out = ["  scaling (saturation, medians over the repeats):"]
    med = {
        label: (
            float(np.median([r.throughput for r in runs])),
            float(np.median([r.per_cpu for r in runs])),
        )
        for label, runs in sat.items()
    }
    for label, (thr, cpu) in med.items():
        base = label.split(", ")[0]  # the same code with one scorer
        b_thr, b_cpu = med.get(base, (thr, cpu))
        out.append(
            f"    {label}: {thr:,.0f} tx/s ({thr / b_thr:.2f}x), {cpu:,.0f} tx per scorer "
            f"CPU-second ({cpu / b_cpu:.2f}x)"
        )
    return out
