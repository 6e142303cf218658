"""The monitor on scenarios of the simulator: what it detects, how late, and its false alarms.

Each run simulates 60 event-days of one world (1,500 customers, 3,000 terminals, ~3,000
payments a day, labels 7 days late) in which one change starts on day 42, after every 30-day
feature window is full: none; a spending shift for one region; a new fraud pattern (card
testing); three times the known fraud (a label shift), either as three times the daily inflow
of compromised terminals and cards (prevalence builds up over weeks) or as a step (three times
the compromised stock at once, and the inflow); a bias against one age band; a 2-day
outage of one region's producer; a gradual rise of every amount over 10 days.

Features come from ``models.features.step`` (the scorer's own code), scores from a champion
(HistGradientBoosting) trained once on another world (seed 999, days 30-44, no change), its
feature importance (permutation, AP) weighting the per-feature drift. There is no online
model here. The monitor is :class:`monitors.core.MonitorCore`, the pure core the worker's
monitor runs, with the deployment's default settings, fed directly (no Kafka or Redis): per
2 event-hours, the labels due, then the payments. An alert's time is the event time the
monitor had reached when it raised it.

Per scenario and alert kind: runs detected (an alert of that kind at or after the change),
median delay in event-days from the change, and for label-based kinds from the first label of
a changed event (7 days later); false alarms = alerts of any kind before the change, warm-up
included (for "none", every alert). ``retrain`` = a retrain/reset request.

Seeds 1-2 (and 6-7) were used to check the thresholds (``--tune``); the tables report seeds 3-5
and 8-10, one table per set. No threshold was tuned on either; but 8-10's no-change runs, first
run after the concept gate was fixed, showed the one-window performance drops that led to
``RIVERWATCH_MONITOR_PERF_WINDOWS`` (as 3-5's seed 5 had), so seeds 11-13 checked that change
(README, "Monitor scenarios").

Label shift against the no-change run: per seed, the flagged count (scores at or above the
review threshold) of the label shift's first 3 days after the change, and the true fraud count
(an oracle that sees every label at once), each over the reference's daily mean, next to the
largest such ratio over any 3 judged days of the no-change run (same seed: the same world
before the change). Where the no-change run reaches the label shift's ratio, no threshold on
that count can catch the shift within 3 days without a false alarm in the no-change run.

Usage: ``python -m bench.monitor [--seeds 3,4,5,8,9,10] [--scenarios none,fraud] [--workers 2]``
(``--scenarios`` takes any part of a scenario's name).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import time
from collections import defaultdict
from multiprocessing import Pool
from typing import Any

import numpy as np

from riverwatch.core.settings import Settings
from riverwatch.models.batch import BatchClassifier, predict_batch, train_batch
from riverwatch.models.decision import decide
from riverwatch.models.features import FEATURE_NAMES, FeatureSpec, apply_terminal, step
from riverwatch.monitors.concept import ConceptDriftMonitor, make_detector
from riverwatch.monitors.core import CoreConfig, MonitorCore
from riverwatch.simulator import AGE_BANDS, REGIONS, GroupBias, Shift, SimConfig
from riverwatch.simulator.base import DAY_S, epoch_seconds
from riverwatch.simulator.days import DayGenerator
from riverwatch.simulator.population import build_population
from riverwatch.streams.monitor.data import drift_columns, policy_config

DAYS, CHANGE, DELAY = 60, 42, 7
CUSTOMERS, TERMINALS = 1500, 3000
TRAIN_SEED, TRAIN_DAYS = 999, (30, 45)
TUNE_SEEDS, REPORT_SEEDS, FRESH_SEEDS = (1, 2, 6, 7), (3, 4, 5), (8, 9, 10)
REF_DAYS = (30, 37)  # the reference's event days (warm-up 30 days, reference 7)
KINDS = ("drift", "fairness", "performance", "quality", "retrain")
LABEL_KINDS = ("performance",)

# scenario -> (SimConfig changes, the alert kind that should catch it)
SCENARIOS: dict[str, tuple[dict[str, Any], str | None]] = {
    "none": ({}, None),
    "spend x1.5, region=south": (
        {"shifts": (Shift("amount", CHANGE, 1.5, "region", "south"),)},
        "drift",
    ),
    "new fraud pattern": ({"drift_day": CHANGE}, "performance"),
    "fraud x3 inflow (gradual label shift)": ({"shifts": (Shift("fraud", CHANGE, 3.0),)}, "drift"),
    "fraud x3 step (label shift)": ({"shifts": (Shift("fraud_step", CHANGE, 3.0),)}, "drift"),
    "bias vs age_band=65+": ({"bias": GroupBias(spike_share=0.3, from_day=CHANGE)}, "fairness"),
    "outage, region=east 2d": (
        {"shifts": (Shift("outage", CHANGE, attribute="region", group="east"),)},
        "quality",
    ),
    "gradual spend x1.6/10d": ({"shifts": (Shift("amount", CHANGE, 1.6, ramp_days=10),)}, "drift"),
}


def world(seed: int, **changes: Any) -> SimConfig:
    """The simulated world of one run."""
    return SimConfig(
        seed=seed, n_customers=CUSTOMERS, n_terminals=TERMINALS, n_days=DAYS,
        label_delay_days=DELAY, **changes,
    )  # fmt: skip


def simulate(cfg: SimConfig, days: int) -> list[dict[str, Any]]:
    """Per day: the payments' epochs, features, labels and groups (features as the scorer
    computes them, terminal risk from labels once they are due)."""
    pop = build_population(cfg.n_customers, cfg.n_terminals, cfg.radius, cfg.seed)
    gen = DayGenerator(cfg, pop)
    spec = FeatureSpec(3600, DELAY)
    cards: dict[int, dict[int, list[float]]] = defaultdict(dict)
    terms: dict[int, dict[int, list[float]]] = defaultdict(dict)
    groups = [pop.groups(i) for i in range(pop.n_customers)]
    start = epoch_seconds(cfg.start)
    out: list[dict[str, Any]] = []
    for d in range(days):
        if d >= DELAY:  # the labels of day d - DELAY are due during day d
            old = out[d - DELAY]
            for tm, t, lab in zip(old["term"], old["epoch"], old["label"], strict=True):
                if lab:
                    apply_terminal(terms[tm], spec.bucket(t), frauds=1.0, count=0.0)
        a = gen.day(d)
        epoch = (a.t + start + d * DAY_S).astype(float)
        cols = (epoch.tolist(), a.amount.tolist(), a.cust.tolist(), a.term.tolist())
        X = np.array([
            step(spec, t, amt, cards[c], terms[tm]) for t, amt, c, tm in zip(*cols, strict=True)
        ]).reshape(-1, len(FEATURE_NAMES))  # fmt: skip
        out.append({
            "epoch": epoch, "X": X, "label": a.label.tolist(), "term": a.term.tolist(),
            "cust": a.cust.tolist(), "groups": [groups[c] for c in a.cust.tolist()],
            "labelled": a.labelled,
        })  # fmt: skip
    return out


@functools.cache
def champion() -> tuple[BatchClassifier, dict[str, float]]:
    """The champion, trained on another world, and its permutation importance (AP)."""
    from sklearn.inspection import permutation_importance

    days = simulate(world(TRAIN_SEED), TRAIN_DAYS[1])[TRAIN_DAYS[0] :]
    X = np.vstack([d["X"] for d in days])
    y = np.concatenate([d["label"] for d in days])
    model = train_batch(X, y, FEATURE_NAMES)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(X), min(20_000, len(X)), replace=False)
    imp = permutation_importance(
        model.estimator, X[pick], y[pick], scoring="average_precision", n_repeats=3, random_state=0
    )
    return model, {
        n: max(float(v), 0.0) for n, v in zip(FEATURE_NAMES, imp.importances_mean, strict=True)
    }


def run(args: tuple[str, int]) -> dict[str, Any]:
    """One scenario on one seed: every alert and control request with its event time."""
    scenario, seed = args
    changes, _ = SCENARIOS[scenario]
    s = Settings()
    model, weights = champion()
    cols = tuple(drift_columns(s))
    cfg = CoreConfig(
        features=FEATURE_NAMES,
        drift_columns=cols,
        review_threshold=s.review_threshold,
        label_delay_s=DELAY * DAY_S,
        window_s=s.monitor_window_s,
        window_size=s.monitor_window_size,
        label_window=s.monitor_label_window,
        fairness_confidence=s.monitor_fairness_confidence,
        fairness_tolerance=s.monitor_fairness_tolerance,
        perf_confidence=s.monitor_perf_confidence,
        weights={c: weights[c] for c in cols},
        policy=policy_config(s),
    )
    concept = ConceptDriftMonitor(
        make_detector(s.monitor_detector),
        min_abs=s.monitor_concept_min_abs,
        min_rel=s.monitor_concept_min_rel,
        min_count=s.monitor_concept_min_labels,
        alpha=s.monitor_concept_alpha,
    )
    core = MonitorCore(cfg, concept)
    days = simulate(world(seed, **changes), DAYS)
    found: list[tuple[str, str, float]] = []
    rows_of: list[list[dict[str, Any]]] = []
    counts: list[tuple[int, int]] = []  # per day: flagged, frauds
    said: list[tuple[float, str]] = []  # each alert's message (figures), for a reader
    for d, day in enumerate(days):
        p = predict_batch(model, day["X"])
        dec = decide(p, s.review_threshold, s.decline_threshold)
        rows = [
            {"x": x, "score": sc, "batch_score": sc, "decision": de, "groups": g, "epoch": t,
             "card_id": c, "batch_model": "champion"}
            for x, sc, de, g, t, c in zip(
                day["X"].tolist(), p.tolist(), dec.tolist(), day["groups"], day["epoch"].tolist(),
                day["cust"], strict=True,
            )
        ]  # fmt: skip
        rows_of.append(rows)
        counts.append((int(np.sum(p >= s.review_threshold)), int(np.sum(day["label"]))))
        due: list[tuple[dict[str, Any], int, float]] = []
        if d >= DELAY:
            old = days[d - DELAY]
            due = [
                (r, lab, r["epoch"] + DELAY * DAY_S)
                for r, lab, ok in zip(
                    rows_of[d - DELAY], old["label"], old["labelled"], strict=True
                )
                if ok
            ]
        t0 = day["epoch"][0] - day["epoch"][0] % DAY_S
        for h in range(0, 24, 2):
            lo, hi = t0 + h * 3600, t0 + (h + 2) * 3600
            dec_l = core.labels([x for x in due if lo <= x[2] < hi], "champion")
            dec_s = core.scores([r for r in rows if lo <= r["epoch"] < hi])
            for decision in (dec_l, dec_s):
                found += [(a.kind, a.subject, core.as_of) for a in decision.alerts]
                said += [(core.as_of, a.message) for a in decision.alerts]
    start = days[0]["epoch"][0] - days[0]["epoch"][0] % DAY_S
    return {
        "scenario": scenario,
        "seed": seed,
        "start": start,
        "alerts": found,
        "counts": counts,
        "messages": said,
    }


def summarise(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (scenario, kind): detections with delays, false alarms before the change."""
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        change = r["start"] + (CHANGE if r["scenario"] != "none" else DAYS) * DAY_S
        for kind in KINDS:
            a = acc.setdefault(
                (r["scenario"], kind), {"delays": [], "false": 0, "runs": 0, "subjects": set()}
            )
            a["runs"] += 1
            times = [t for k, _, t in r["alerts"] if k == kind]
            a["false"] += sum(t < change for t in times)
            after = [(t, s) for k, s, t in r["alerts"] if k == kind and t >= change]
            a["delays"].append((after[0][0] - change) / DAY_S if after else math.inf)
            a["subjects"] |= {s for _, s in after[:3]}
    return acc


def table(results: list[dict[str, Any]], seeds: list[int]) -> None:
    """Print the markdown table."""
    acc = summarise(results)
    print(f"seeds {seeds}; change on day {CHANGE} of {DAYS}; labels {DELAY} days late\n")
    print(
        "| scenario | kind | detected | median delay (days) | false alarms before change "
        "| subjects |"
    )
    print("|---|---|---|---|---|---|")
    for scenario, (_, want) in SCENARIOS.items():
        if (scenario, KINDS[0]) not in acc:
            continue
        for kind in KINDS:
            a = acc[(scenario, kind)]
            d = np.array(a["delays"])
            hit = int(np.isfinite(d).sum())
            if scenario == "none":
                delay = "-"
                det = "-"
            else:
                med = float(np.median(d))
                delay = "-" if math.isinf(med) else f"{med:.1f}"
                if kind in LABEL_KINDS and not math.isinf(med):
                    delay += f" ({med - DELAY:+.1f} from labels)"
                det = f"{hit}/{len(d)}"
            mark = " **(target)**" if kind == want else ""
            subj = ", ".join(sorted(a["subjects"]))[:60]
            print(f"| {scenario} | {kind}{mark} | {det} | {delay} | {a['false']} | {subj} |")


def _ratios(counts: list[tuple[int, int]], first: int, last: int) -> list[tuple[float, float]]:
    """Flagged and fraud counts of each 3-day span starting on days first..last, over 3 times
    the reference's daily mean."""
    ref = np.mean(counts[REF_DAYS[0] : REF_DAYS[1]], axis=0)
    out = []
    for d in range(first, last + 1):
        fl, fr = np.sum(counts[d : d + 3], axis=0) / (3 * ref)
        out.append((float(fl), float(fr)))
    return out


def separability(results: list[dict[str, Any]]) -> None:
    """Per seed: the label shifts' first 3 days against the no-change run's largest 3 days."""
    for shift in (n for n in SCENARIOS if n.startswith("fraud x3")):
        _separability(results, shift)


def _separability(results: list[dict[str, Any]], shift: str) -> None:
    by = {(r["scenario"], r["seed"]): r["counts"] for r in results}
    seeds = sorted(k for (n, k) in by if n == shift and ("none", k) in by)
    if not seeds:
        return
    print(
        f"\n{shift} vs no change, per seed: counts over 3 days / 3 x the reference's daily "
        f"mean (days {REF_DAYS[0]}-{REF_DAYS[1] - 1}); flagged = score >= review threshold, "
        "frauds = true labels (an oracle)\n"
    )
    print(
        "| seed | label shift days 42-44: flagged | frauds | no change, largest over 3 judged "
        "days: flagged | frauds | separable in 3 days (flagged / frauds) |"
    )
    print("|---|---|---|---|---|---|")
    for k in seeds:
        fl, fr = _ratios(by[(shift, k)], CHANGE, CHANGE)[0]
        calm = _ratios(by[("none", k)], REF_DAYS[1], DAYS - 3)
        cfl, cfr = max(x for x, _ in calm), max(y for _, y in calm)
        sep = f"{'yes' if fl > cfl else 'no'} / {'yes' if fr > cfr else 'no'}"
        print(f"| {k} | {fl:.2f} | {fr:.2f} | {cfl:.2f} | {cfr:.2f} | {sep} |")


def main() -> None:
    """Run the scenarios on the seeds and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    seeds_default = ",".join(map(str, REPORT_SEEDS + FRESH_SEEDS))
    ap.add_argument("--seeds", default=seeds_default)
    ap.add_argument("--tune", action="store_true", help=f"the tuning seeds {TUNE_SEEDS}")
    ap.add_argument("--scenarios", default="", help="comma-separated parts of scenario names")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--save",
        default="",
        help="JSON-lines file of raw results: each run is appended as it ends, runs already in "
        "it are not run again, and the tables cover every run in it of the chosen seeds and "
        "scenarios (so a long benchmark can be resumed or run in parts)",
    )
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="print the tables of the --save file, run nothing",
    )
    args = ap.parse_args()
    seeds = list(TUNE_SEEDS) if args.tune else [int(x) for x in args.seeds.split(",")]
    parts = [p.strip() for p in args.scenarios.split(",") if p.strip()]
    names = [n for n in SCENARIOS if not parts or any(p in n for p in parts)]
    t0 = time.perf_counter()
    saved: list[dict[str, Any]] = []
    if args.save and os.path.exists(args.save):
        with open(args.save) as f:
            saved = [json.loads(line) for line in f if line.strip()]
    done = {(r["scenario"], r["seed"]) for r in saved}
    jobs = [(n, seed) for n in names for seed in seeds if (n, seed) not in done]
    results = [r for r in saved if r["scenario"] in names and r["seed"] in seeds]
    if jobs and not args.report_only:
        champion()  # once, before the workers fork
        with Pool(args.workers) as pool:
            for r in pool.imap_unordered(run, jobs):
                results.append(r)
                if args.save:
                    with open(args.save, "a") as f:
                        f.write(json.dumps(r) + "\n")
    sets = (
        ("tuning", TUNE_SEEDS),
        ("reported (not tuned on)", REPORT_SEEDS),
        ("reported (not tuned on, first run in session 6)", FRESH_SEEDS),
        ("other", tuple(k for k in seeds if k not in TUNE_SEEDS + REPORT_SEEDS + FRESH_SEEDS)),
    )
    for kind, members in sets:
        ran = {r["seed"] for r in results}
        if chosen := [k for k in seeds if k in members and k in ran]:
            print(f"### Monitor scenarios, {kind} seeds; champion trained on seed {TRAIN_SEED}\n")
            table([r for r in results if r["seed"] in chosen], chosen)
            print()
    separability(results)
    print(f"\n({time.perf_counter() - t0:.0f} s; age bands {AGE_BANDS}, regions {REGIONS})")


if __name__ == "__main__":
    main()
