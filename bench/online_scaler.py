"""Why a logistic regression that starts learning late beats the one that learns every label
(issue 17), and what fixes it: variants of the online learner over the replayed stream.

``make bench-online-learners`` found the production learner (River's StandardScaler |
LogisticRegression, learning every label from the first) below the same model started on the
labels of day 21 on. Suspects: the scaler's statistics, taken while the 30-day feature windows
(37 days for the terminals' delayed windows) were still filling, or the weights learned then.
Each variant replays the stream as bench/quality_replay.py's ``online_scores`` does (on day
``d`` it learns the labels of day ``d - 7``, then scores day ``d``):

* ``production``: :func:`riverwatch.models.online.make_model` as configured, every label;
* ``river scaler``: River's StandardScaler (never forgets), every label (the code before);
* ``from day N``: River's scaler and the regression learn only transactions of day >= N;
* ``scaler from 21``: the scaler learns only transactions of day >= 21 (before, rows scale
  to 0), the regression every label: if this recovers, the scaler's early statistics are
  the cause;
* ``weights from 21``: the scaler learns every label, the regression only day >= 21;
* ``half-life H``: :class:`riverwatch.models.online.DecayingScaler` (H labels), every label.

Per variant and seed: AUC/AP/CP@100 of the online score alone on the test days 49-55, and,
with ``--combined``, of the blended score as served (bench/quality_seeds.py's ``riverwatch``:
the trainer's retrain at day 49 with this online score recorded on the hold-out). Usage::

    RW_Q_WORLD=handbook OMP_NUM_THREADS=1 nice -n 15 python -m bench.online_scaler \\
        --seeds 101:2500,102:5000,103:7500 --variants prod,river,from21 [--combined]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from bench.quality_replay import DELAY, WORLD, Stream, simulate
from riverwatch.context import Context
from riverwatch.core.settings import Settings
from riverwatch.models import online
from riverwatch.models.evaluation import auc_roc, average_precision, card_precision_at_k

N_DAYS, TEST_START = 56, 49
# learn(day of the labelled transaction) -> (scaler learns?, regression learns?)
Policy = Callable[[int], tuple[bool, bool]]


def _always(day: int) -> tuple[bool, bool]:
    return True, True


def _from(first: int, day: int) -> tuple[bool, bool]:
    return day >= first, day >= first


def variants() -> dict[str, tuple[Callable[[], object], Policy]]:
    """Name -> (model factory, learning policy)."""

    def river_scaler() -> object:
        return online.make_model(half_life=None)

    out: dict[str, tuple[Callable[[], object], Policy]] = {
        "prod": (online.make_model, _always),
        "river": (river_scaler, _always),
        "scaler21": (river_scaler, lambda d: (d >= 21, True)),
        "weights21": (river_scaler, lambda d: (True, d >= 21)),
    }
    for n in (14, 21, 30, 37):
        out[f"from{n}"] = (river_scaler, partial(_from, n))
    for h in (10_000, 25_000, 50_000, 100_000, 200_000):
        out[f"hl{h // 1000}k"] = (partial(online.make_model, half_life=h), _always)
    return out


def replay(s: Stream, make: Callable[[], object], policy: Policy) -> np.ndarray:
    """The online score of every transaction at its scoring time, under ``policy``."""
    model = make()
    scaler, lr = model.steps.values()  # type: ignore[attr-defined]
    out = np.empty(len(s))
    bounds = np.searchsorted(s.day, np.arange(N_DAYS + 1))
    for d in range(N_DAYS):
        if d >= DELAY:
            scale, weights = policy(d - DELAY)
            lo, hi = bounds[d - DELAY], bounds[d - DELAY + 1]
            for row, y in zip(s.X[lo:hi].tolist(), s.fraud[lo:hi].tolist(), strict=True):
                x = dict(zip(s.names, row, strict=True))
                if scale:
                    scaler.learn_one(x)
                if weights:
                    lr.learn_one(scaler.transform_one(x), bool(y))
        lo, hi = bounds[d], bounds[d + 1]
        out[lo:hi] = online.score_batch(model, s.X[lo:hi], s.names)  # type: ignore[arg-type]
    return out


def quality(s: Stream, test: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    """AUC, AP and the Handbook's Card Precision@100 of the test rows."""
    y = s.fraud[test]
    cp = card_precision_at_k(s.day[test], s.card[test], y, p, k=100).mean
    return auc_roc(y, p), average_precision(y, p), cp


def main() -> None:
    """Run the chosen variants on the chosen seeds; print one row per seed and variant."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="101:2500,102:5000,103:7500")
    ap.add_argument("--variants", default="prod,river,from21,scaler21,weights21")
    ap.add_argument("--combined", action="store_true", help="also the blended score")
    args = ap.parse_args()
    known = variants()
    keys = args.variants.split(",")
    cfg = Context.from_settings(Settings()).training
    res: dict[str, list[tuple[float, ...]]] = {k: [] for k in keys}
    print(f"{WORLD} world; online AUC/AP/CP@100 [combined AUC/AP/CP@100]", flush=True)
    for pair in args.seeds.split(","):
        seed, n = (int(v) for v in pair.split(":"))
        s = simulate(seed, n, N_DAYS)
        test = s.day >= TEST_START
        for k in keys:
            t0 = time.monotonic()
            s.online_score = replay(s, *known[k])
            row: tuple[float, ...] = quality(s, test, s.online_score[test])
            if args.combined:
                from bench.quality_seeds import riverwatch  # heavy imports only when asked

                row += quality(s, test, riverwatch(s, test, cfg)["combined (raw)"])
            res[k].append(row)
            print(f"{seed:>4} {k:<10} " + " ".join(f"{v:.3f}" for v in row)
                  + f"  ({time.monotonic() - t0:.0f} s)", flush=True)  # fmt: skip
    print("\nmean (min..max) over seeds")
    for k in keys:
        v = np.array(res[k])
        print(f"{k:<10} " + " ".join(f"{m:.3f}" for m in v.mean(0))
              + "   min " + " ".join(f"{m:.3f}" for m in v.min(0)))  # fmt: skip


if __name__ == "__main__":
    main()
