"""Concept-drift detection on River's synthetic streams, and what the monitors cost.

Protocol. Each stream has three drifts between four concepts, built with River's
``synth.ConceptDriftStream``: SEA (variants 0->1->2->3, no label noise), SEA with 10 % label
noise (smaller, harder changes of the error), and Agrawal (functions 0->2->5->8, 5 %
perturbation); each abrupt (width 1) and gradual (width 5,000). A River Hoeffding tree learns
prequentially (predict, then learn) and its 0/1 error feeds
:class:`monitors.concept.ConceptDriftMonitor`. The first 5,000 events warm the learner up and
are not monitored; drifts sit at 30k, 55k and 80k; streams end at 105k.

A detection of an *increase* of the error counts for a drift at position p when it falls in
[p - width, p + width / 2 + 5,000] (for abrupt drifts, [p, p + 5,000]); its delay is
(detection - p), the centre of the transition, so a gradual drift caught on its rising edge
has a negative delay. A drift with no detection in its window is missed, and counts as an
infinite delay in the median. Every other detection is a false alarm; the events outside the
windows are the stable events.

The defaults were chosen on seeds 0-7; this benchmark runs held-out seeds (100-104 unless
``--seeds`` says otherwise).

Usage: ``python -m bench.drift [--seeds 100,101,102,103,104] [--quick] [--no-cost]``
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Callable, Iterator
from multiprocessing import Pool
from typing import Any

import numpy as np
from river import drift, tree
from river.base import DriftDetector
from river.datasets import synth

from bench.cbpe_cost import cbpe_table
from bench.drift_cost import cost_table
from riverwatch.monitors.concept import ConceptDriftMonitor
from riverwatch.monitors.concept.detectors import make_detector

WARMUP, FIRST, GAP, N_DRIFTS, TAIL, ACCEPT, GRADUAL = 5000, 30_000, 25_000, 3, 25_000, 5000, 5000
SCENARIOS = {
    f"{kind}/{name}": (kind, width)
    for kind in ("sea", "sea-noisy", "agrawal")
    for name, width in (("abrupt", 1), ("gradual", GRADUAL))
}
DETECTORS: dict[str, Callable[[], DriftDetector | None]] = {
    "default: ADWIN(delta=0.02)": lambda: None,
    "ADWIN(delta=0.002), River's default": lambda: make_detector("adwin", delta=0.002),
    "ADWIN(delta=0.05)": lambda: make_detector("adwin", delta=0.05),
    "PageHinkley(up), River's defaults": lambda: make_detector("page_hinkley"),
    "PageHinkley(up, threshold=25, delta=0.01, alpha=1)": lambda: drift.PageHinkley(
        threshold=25, delta=0.01, alpha=1.0, mode="up"
    ),
}


def positions(n_drifts: int = N_DRIFTS) -> list[int]:
    """The drift positions of a stream."""
    return [FIRST + i * GAP for i in range(n_drifts)]


def _concept(kind: str, i: int, seed: int) -> Any:
    if kind.startswith("sea"):
        return synth.SEA(variant=i, seed=seed, noise=0.1 if kind == "sea-noisy" else 0.0)
    return synth.Agrawal(classification_function=(0, 2, 5, 8)[i], seed=seed, perturbation=0.05)


def drifting_stream(kind: str, width: int, seed: int, n_drifts: int = N_DRIFTS) -> Iterator[Any]:
    """A stream with drifts at :func:`positions`, ``positions[-1] + TAIL`` events long.

    River's ConceptDriftStream overflows ``math.exp`` once ``position - t > ~177 * width``
    (river 0.26), so an abrupt drift far into a stream raises ``OverflowError``. Only the
    stretch around each drift goes through ConceptDriftStream; the stable stretches are plain
    draws of the concept (fresh seeds, so no stretch repeats another).
    """
    pos = positions(n_drifts)
    half = min(GAP // 2, 150 * width)
    parts: list[Iterator[Any]] = []
    t, s = 0, seed * 1000
    for i, p in enumerate(pos):
        parts.append(_concept(kind, i, s).take(p - half - t))
        mix = synth.ConceptDriftStream(
            stream=_concept(kind, i, s + 1),
            drift_stream=_concept(kind, i + 1, s + 2),
            position=half,
            width=width,
            seed=s,
        )
        parts.append(mix.take(2 * half))
        t, s = p + half, s + 3
    parts.append(_concept(kind, len(pos), s).take(pos[-1] + TAIL - t))
    return itertools.chain(*parts)


def error_stream(kind: str, width: int, seed: int, n_drifts: int = N_DRIFTS) -> np.ndarray:
    """0/1 errors of a Hoeffding tree run prequentially on :func:`drifting_stream`."""
    model = tree.HoeffdingTreeClassifier()
    errors = []
    for x, y in drifting_stream(kind, width, seed, n_drifts):
        errors.append(model.predict_one(x) != y)
        model.learn_one(x, y)
    return np.array(errors, dtype=np.int8)


def detections(detector: DriftDetector | None, errors: np.ndarray) -> list[int]:
    """Positions where the monitor reports an increase of the error (from WARMUP on)."""
    mon = ConceptDriftMonitor(detector, per_group=False)
    found = []
    for i, e in enumerate(errors[WARMUP:].tolist(), start=WARMUP):
        if mon.observe("m", "*", e) is not None:
            found.append(i)
    return found


def score(found: list[int], width: int, length: int, n_drifts: int = N_DRIFTS) -> dict[str, Any]:
    """Delays (inf = missed), false alarms and stable events of one stream's detections."""
    lead = width if width > 1 else 0
    windows = [(p - lead, p + width // 2 + ACCEPT, p) for p in positions(n_drifts)]
    delays = []
    for a, b, p in windows:
        hits = [d for d in found if a <= d < b]
        delays.append(hits[0] - p if hits else math.inf)
    false = sum(1 for d in found if not any(a <= d < b for a, b, _ in windows))
    stable = (length - WARMUP) - sum(b - a for a, b, _ in windows)
    return {"delays": delays, "false": false, "stable": stable}


def _job(args: tuple[str, int, int]) -> tuple[str, int, dict[str, dict[str, Any]], float]:
    scenario, seed, n_drifts = args
    kind, width = SCENARIOS[scenario]
    errors = error_stream(kind, width, seed, n_drifts)
    out, spent = {}, 0.0
    for name, factory in DETECTORS.items():
        t0 = time.perf_counter()
        found = detections(factory(), errors)
        spent += time.perf_counter() - t0
        out[name] = score(found, width, len(errors), n_drifts)
    return scenario, seed, out, spent / (len(DETECTORS) * (len(errors) - WARMUP))


def _fmt_delay(d: float) -> str:
    return "missed" if math.isinf(d) else f"{d:.0f}"


def detection_table(seeds: list[int], n_drifts: int, workers: int) -> None:
    """Run every scenario x seed and print one table per detector."""
    jobs = [(s, seed, n_drifts) for s in SCENARIOS for seed in seeds]
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    per_event = []
    with Pool(workers) as pool:
        for scenario, _seed, res, us in pool.imap_unordered(_job, jobs):
            per_event.append(us)
            for name, r in res.items():
                a = acc.setdefault((name, scenario), {"delays": [], "false": 0, "stable": 0})
                a["delays"] += r["delays"]
                a["false"] += r["false"]
                a["stable"] += r["stable"]
    print(
        f"seeds {seeds}; {n_drifts} drifts a stream; detector cost {np.mean(per_event) * 1e6:.1f}"
        " us/event (ConceptDriftMonitor.observe)\n"
    )
    for name in DETECTORS:
        print(f"### {name}")
        print("| scenario | detected | median delay | p90 delay | false alarms | per 100k stable |")
        print("|---|---|---|---|---|---|")
        all_d, all_f, all_s = [], 0, 0
        for scenario in SCENARIOS:
            a = acc[(name, scenario)]
            d = np.array(a["delays"], dtype=float)
            all_d += a["delays"]
            all_f += a["false"]
            all_s += a["stable"]
            print(
                f"| {scenario} | {np.isfinite(d).sum()}/{len(d)} | {_fmt_delay(np.median(d))} | "
                f"{_fmt_delay(np.quantile(d, 0.9))} | {a['false']} | "
                f"{a['false'] / a['stable'] * 1e5:.2f} |"
            )
        d = np.array(all_d, dtype=float)
        print(
            f"| **all** | {np.isfinite(d).sum()}/{len(d)} | {_fmt_delay(np.median(d))} | "
            f"{_fmt_delay(np.quantile(d, 0.9))} | {all_f} | {all_f / all_s * 1e5:.2f} "
            f"({all_s:,} stable) |\n"
        )


def main() -> None:
    """Parse arguments, run the detection benchmark and the cost benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="100,101,102,103,104")
    ap.add_argument("--quick", action="store_true", help="2 seeds, 1 drift a stream")
    ap.add_argument("--no-cost", action="store_true")
    ap.add_argument("--cost-only", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    n_drifts = N_DRIFTS
    if args.quick:
        seeds, n_drifts = seeds[:2], 1
    if not args.cost_only:
        t0 = time.perf_counter()
        detection_table(seeds, n_drifts, args.workers)
        print(f"(detection benchmark: {time.perf_counter() - t0:.0f} s)\n")
    if not args.no_cost:
        cost_table()
        cbpe_table()


if __name__ == "__main__":
    main()
