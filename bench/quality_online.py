"""Online learners compared on quality and cost per event (issue 17), on one tuning seed.

Each learner learns the labeled rows of days ``LEARN`` of a cached seed (bench/quality_replay,
the stream's features) in arrival order with ``learn_one``, then scores the transactions of
the test week's first day. Prints AUC, AP and the microseconds per ``learn_one`` and per
scored row (River's ``predict_proba_one``; riverwatch's own logistic regression scores a
batch with :func:`models.online.score_batch`, shown too). Usage::

    python -m bench.quality_online [seed customers]    # default: tuning seed 101, 2,500
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from river import ensemble, forest, preprocessing, tree

from bench.quality_replay import online_scores, simulate
from bench.quality_seeds import N_DAYS, TEST_START
from riverwatch.models import online
from riverwatch.models.evaluation import auc_roc, average_precision

LEARN = (35, 42)  # the days whose labels are learned (a week, arrival order)


def learners() -> dict[str, Callable[[], Any]]:
    """The candidates, each a fresh River model."""
    return {
        "logistic regression (today)": online.make_model,
        "Hoeffding adaptive tree": lambda: (
            preprocessing.StandardScaler() | tree.HoeffdingAdaptiveTreeClassifier(seed=0)
        ),
        "adaptive random forest (10)": lambda: forest.ARFClassifier(n_models=10, seed=0),
        "ADWIN bagging (10 HT)": lambda: ensemble.ADWINBaggingClassifier(
            tree.HoeffdingTreeClassifier(), n_models=10, seed=0
        ),
    }


def main() -> None:
    """Learn, score and time each candidate."""
    seed, customers = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (101, 2500)
    s = simulate(seed, customers, N_DAYS)
    s.online_score = online_scores(s)
    learn = np.flatnonzero((s.day >= LEARN[0]) & (s.day < LEARN[1]))
    test = np.flatnonzero(s.day == TEST_START)
    xs = [dict(zip(s.names, row, strict=True)) for row in s.X[learn].tolist()]
    ys = s.fraud[learn].tolist()
    xt = [dict(zip(s.names, row, strict=True)) for row in s.X[test].tolist()]
    yt = s.fraud[test]
    days = f"{LEARN[0]}-{LEARN[1] - 1}"
    print(f"seed {seed} ({customers} customers): learn {len(xs)} labels of days {days}, "
          f"score {len(xt)} transactions of day {TEST_START}")  # fmt: skip
    print(f"{'learner':<30}{'AUC':>7}{'AP':>7}{'learn µs':>10}{'score µs':>10}")
    for name, make in learners().items():
        model = make()
        t0 = time.perf_counter()
        for x, y in zip(xs, ys, strict=True):
            model.learn_one(x, bool(y))
        t_learn = (time.perf_counter() - t0) / len(xs) * 1e6
        t0 = time.perf_counter()
        p = np.array([model.predict_proba_one(x).get(True, 0.0) for x in xt])
        t_score = (time.perf_counter() - t0) / len(xt) * 1e6
        print(f"{name:<30}{auc_roc(yt, p):7.3f}{average_precision(yt, p):7.3f}"
              f"{t_learn:10.0f}{t_score:10.0f}", flush=True)  # fmt: skip
        if name.startswith("logistic"):
            t0 = time.perf_counter()
            online.score_batch(model, s.X[test], s.names)
            t_batch = (time.perf_counter() - t0) / len(xt) * 1e6
            print(f"{'  (score_batch, vectorized)':<44}{t_batch:10.1f}", flush=True)


if __name__ == "__main__":
    main()
