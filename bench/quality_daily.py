"""The daily scheduled retrain on the tuning seeds (issue 17): how many scheduled challengers
are promoted once a champion exists, and the test week's AUC/AP/CP@100/CP kept of the combined
score. Writes no result file (``bench/quality_seeds.py``'s cache of streams is reused)::

    OMP_NUM_THREADS=1 nice -n 15 python -m bench.quality_daily
    RW_Q_WORLD=handbook OMP_NUM_THREADS=1 nice -n 15 python -m bench.quality_daily
"""

from __future__ import annotations

import time

import numpy as np

import bench.quality_seeds as q
from bench.quality_replay import online_scores, simulate
from riverwatch.context import Context
from riverwatch.core.settings import Settings


def main() -> None:
    """Per tuning seed: promotions of scheduled challengers, then the combined metrics."""
    q.SCHEDULE = tuple(range(q.TEST_START, q.N_DAYS))  # RIVERWATCH_RETRAIN_EVERY_DAYS=1
    log: list[tuple[int, bool, bool]] = []
    retrain = q.retrain

    def counting(s, day, cfg, champ):  # type: ignore[no-untyped-def]
        new = retrain(s, day, cfg, champ)
        log.append((day, champ is not None, new is not champ))
        return new

    q.retrain = counting
    rows = []
    for seed, n in q.TUNING:
        t0 = time.monotonic()
        log.clear()
        s = simulate(seed, n, q.N_DAYS)
        s.online_score = online_scores(s)
        test = s.day >= q.TEST_START
        out = q.riverwatch(s, test, Context.from_settings(Settings()).training)
        m = q.metrics(s, test, out["combined"])
        rows.append(m)
        faced = [(d, won) for d, had, won in log if had]
        won = [d for d, w in faced if w]
        values = "/".join(f"{v:.3f}" for v in m)
        print(
            f"seed {seed} ({n}): promoted {len(won)} of {len(faced)} scheduled challengers "
            f"facing a champion (days {won}); combined {values}; {time.monotonic() - t0:.0f} s",
            flush=True,
        )
    print("mean " + "/".join(f"{v:.3f}" for v in np.mean(rows, 0)))


if __name__ == "__main__":
    main()
