"""Online learners compared on the replayed stream, on quality and cost per event (issue 17).

Each seed's stream is the quality benchmark's (bench/quality_replay.py: the simulator's world,
``RW_Q_WORLD`` as there, the stream's own features, cached). Every learner replays it as the
learner and the scorer do in production: on each day ``d`` it first learns the labels that
arrive that day (the transactions of day ``d - 7``, in their order, ``learn_one``), then
scores the day's transactions; the test days are 49-55, as in bench/quality_seeds.py.

To bound the cost of the slow learners every learner starts with the labels that arrive on day
``--from-day`` (default 28: those of the transactions of days 21-48 are learned before and
during the test week, ~137,000 at 2,500 customers); the production row ``logistic regression
(from day 0)`` is the logistic regression as the stream runs it, learning every label from the
first (the benchmark's cached online scores). Per learner and seed: AUC, AP and the Handbook's
Card Precision@100 of the test days; the CPU time of the thread (``time.thread_time``, so other
processes on the machine do not count) per ``learn_one`` and per ``predict_proba_one``, timed
over each day's calls (the feature dicts are built outside the timed loop); the model's memory
(River's ``_raw_memory_usage``) and its pickled size (what the learner publishes as a snapshot)
at the end. The production scorer does not call ``predict_proba_one`` for the logistic
regression: it scores a batch with :func:`riverwatch.models.online.score_batch` (``batch µs``).

Usage (CPU heavy: one at a time, ``nice -n 10``)::

    RW_Q_WORLD=handbook OMP_NUM_THREADS=1 nice -n 10 python -m bench.online_learners
    python -m bench.online_learners --seeds 201:2500,204:2500 --learners lr,hat
    python -m bench.online_learners summary     # the tables of the last runs, from the cache
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from river import ensemble, forest, tree

from bench.quality_replay import CACHE, DELAY, TAG, WORLD, Stream, online_scores, simulate
from riverwatch.models import online
from riverwatch.models.evaluation import auc_roc, average_precision, card_precision_at_k

N_DAYS, TEST_START = 56, 49
SEEDS = "201:2500,204:2500,205:2500"  # reported seeds of bench/quality_seeds.py
LEARNERS: dict[str, tuple[str, Callable[[], Any]]] = {
    "lr": ("logistic regression (today)", online.make_model),
    "arf": ("adaptive random forest, 3 trees", lambda: forest.ARFClassifier(n_models=3, seed=0)),
    "hat": ("Hoeffding adaptive tree", lambda: tree.HoeffdingAdaptiveTreeClassifier(seed=0)),
    "boost": (
        "ADWIN boosting, 3 Hoeffding trees",
        lambda: ensemble.ADWINBoostingClassifier(
            tree.HoeffdingTreeClassifier(), n_models=3, seed=0
        ),
    ),
}
COLUMNS = ("AUC", "AP", "CP@100", "learn µs", "predict µs", "batch µs", "memory KB", "pickle KB")
PRODUCTION = "logistic regression (from day 0)"


def quality(s: Stream, test: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    """AUC, AP and the Handbook's Card Precision@100 of the test rows."""
    y = s.fraud[test]
    cp = card_precision_at_k(s.day[test], s.card[test], y, p, k=100).mean
    return auc_roc(y, p), average_precision(y, p), cp


def replay(s: Stream, make: Callable[[], Any], from_day: int) -> dict[str, float]:
    """One learner through the stream (see the module): its scores' quality and its costs."""
    model = make()
    bounds = np.searchsorted(s.day, np.arange(N_DAYS + 1))
    scores = np.full(len(s), np.nan)
    learn_ns = predict_ns = batch_ns = 0
    n_learn = n_pred = 0
    for d in range(from_day, N_DAYS):
        lo, hi = bounds[d - DELAY], bounds[d - DELAY + 1]
        xs = [dict(zip(s.names, row, strict=True)) for row in s.X[lo:hi].tolist()]
        ys = [bool(v) for v in s.fraud[lo:hi].tolist()]
        t0 = time.thread_time_ns()
        for x, y in zip(xs, ys, strict=True):
            model.learn_one(x, y)
        learn_ns += time.thread_time_ns() - t0
        n_learn += len(xs)
        if d < TEST_START:
            continue
        lo, hi = bounds[d], bounds[d + 1]
        xs = [dict(zip(s.names, row, strict=True)) for row in s.X[lo:hi].tolist()]
        t0 = time.thread_time_ns()
        p = [model.predict_proba_one(x).get(True, 0.0) for x in xs]
        predict_ns += time.thread_time_ns() - t0
        n_pred += len(xs)
        scores[lo:hi] = p
        if make is online.make_model:
            t0 = time.thread_time_ns()
            online.score_batch(model, s.X[lo:hi], s.names)
            batch_ns += time.thread_time_ns() - t0
    test = s.day >= TEST_START
    auc, ap, cp = quality(s, test, scores[test])
    return {
        "AUC": auc, "AP": ap, "CP@100": cp,
        "learn µs": learn_ns / n_learn / 1e3, "predict µs": predict_ns / n_pred / 1e3,
        "batch µs": batch_ns / n_pred / 1e3 if batch_ns else float("nan"),
        "memory KB": model._raw_memory_usage / 1024, "pickle KB": len(pickle.dumps(model)) / 1024,
        "labels learned": n_learn,
    }  # fmt: skip


def run_seed(seed: int, customers: int, keys: list[str], from_day: int) -> dict[str, Any]:
    """Every learner's row of one seed (stored in the cache as they finish)."""
    s = simulate(seed, customers, N_DAYS)
    s.online_score = online_scores(s)
    test = s.day >= TEST_START
    nan = float("nan")
    auc, ap, cp = quality(s, test, s.online_score[test])
    rows: dict[str, Any] = {PRODUCTION: {**dict.fromkeys(COLUMNS, nan),
                                         "AUC": auc, "AP": ap, "CP@100": cp}}  # fmt: skip
    path = CACHE / f"learners-{TAG}{seed}-{customers}-{from_day}.json"
    if path.exists():
        rows.update(json.loads(path.read_text()))
    for key in keys:
        name, make = LEARNERS[key]
        t0 = time.monotonic()
        rows[name] = replay(s, make, from_day)
        print(f"seed {seed} ({customers}): {name}: " + ", ".join(
            f"{c} {rows[name][c]:.3f}" for c in COLUMNS) +
            f"; {time.monotonic() - t0:.0f} s", flush=True)  # fmt: skip
        path.write_text(json.dumps(rows))
    return rows


def print_tables(results: dict[int, dict[str, Any]], from_day: int) -> None:
    """Per seed, then per learner the mean and the spread (min..max) over the seeds."""
    first = from_day - DELAY
    print(f"\n{WORLD} world, learning the labels of the transactions of day {first} on, "
          f"test days {TEST_START}-{N_DAYS - 1}")  # fmt: skip
    head = "".join(f"{c:>11}" for c in COLUMNS)
    print(f"{'seed':>5}  {'learner':<36}{head}")
    for seed, rows in results.items():
        for name, r in rows.items():
            print(f"{seed:>5}  {name:<36}" + "".join(f"{r[c]:11.3f}" for c in COLUMNS))
    names = [n for n in next(iter(results.values())) if all(n in r for r in results.values())]
    print(f"\n{'mean (min..max) over seeds ' + ','.join(map(str, results)):<43}")
    for name in names:
        cells = []
        for c in COLUMNS:
            v = np.array([r[name][c] for r in results.values()], dtype=float)
            cells.append("-" if np.isnan(v).all() else
                         f"{np.mean(v):.3f} ({np.min(v):.3f}..{np.max(v):.3f})")  # fmt: skip
        print(f"{name}: " + "; ".join(f"{c} {x}" for c, x in zip(COLUMNS, cells, strict=True)))


def main() -> None:
    """Run (or, with ``summary``, reprint) the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", nargs="?", default="run", choices=("run", "summary"))
    ap.add_argument("--seeds", default=SEEDS, help="seed:customers[,seed:customers...]")
    ap.add_argument("--learners", default=",".join(LEARNERS), help=",".join(LEARNERS))
    ap.add_argument("--from-day", type=int, default=28,
                    help="the day whose arriving labels are learned first")  # fmt: skip
    args = ap.parse_args()
    if args.from_day < DELAY:
        raise SystemExit(f"--from-day must be >= {DELAY} (no label arrives before)")
    pairs = [tuple(int(v) for v in p.split(":")) for p in args.seeds.split(",")]
    keys = [k for k in args.learners.split(",") if k]
    results = {}
    for seed, n in pairs:
        path = CACHE / f"learners-{TAG}{seed}-{n}-{args.from_day}.json"
        if args.what == "summary":
            if path.exists():
                results[seed] = json.loads(path.read_text())
            continue
        results[seed] = run_seed(seed, n, keys, args.from_day)
    if results:
        print_tables(results, args.from_day)


if __name__ == "__main__":
    main()
