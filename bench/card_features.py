"""Are card features the feature store does not serve yet worth serving? (issue 17)

Before the store learns to keep them, each candidate is computed offline from the replayed
stream (bench/quality_replay.py) and given to the batch model only (the online learner keeps
today's columns), then the test week is scored as bench/quality_seeds.py's ``riverwatch``
does (the trainer's retrain at day 49, the blend). Candidates, per transaction, from its
card's earlier transactions (and itself, as the store's card windows count it):

* ``max``: the card's largest amount of the last 1 and 7 days, and the amount over it;
* ``since``: seconds since the card's previous transaction (30 days when none);
* ``vel``: the card's transactions in the last hour and the last 10 minutes.

Usage (CPU heavy: one at a time)::

    RW_Q_WORLD=handbook OMP_NUM_THREADS=1 nice -n 15 python -m bench.card_features \\
        --seeds 101:2500,102:5000,103:7500 --sets none,max,since,vel,all
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from bench.online_scaler import N_DAYS, TEST_START, quality
from bench.quality_replay import online_scores, simulate
from bench.quality_seeds import riverwatch
from riverwatch.context import Context
from riverwatch.core.settings import Settings

DAY = 86_400.0


def candidates(card: np.ndarray, epoch: np.ndarray, amount: np.ndarray) -> dict[str, np.ndarray]:
    """Every candidate column, in the stream's row order (rows are in time order)."""
    df = pd.DataFrame({"card": card, "t": pd.to_datetime(epoch, unit="s"), "amount": amount,
                       "one": 1.0, "row": np.arange(len(card))})  # fmt: skip
    df = df.sort_values(["card", "t", "row"], kind="stable")
    g = df.groupby("card", sort=False)
    out: dict[str, np.ndarray] = {}

    def rolled(col: str, span: str, how: str) -> np.ndarray:
        r = g.rolling(span, on="t")[col]
        vals = (r.max() if how == "max" else r.sum()).to_numpy()
        res = np.empty(len(df))
        res[df["row"].to_numpy()] = vals
        return res

    out["card_max_1d"] = rolled("amount", "1D", "max")
    out["card_max_7d"] = rolled("amount", "7D", "max")
    out["amount_over_max_7d"] = amount / np.maximum(out["card_max_7d"], 1e-9)
    prev = g["t"].shift(1)
    since = ((df["t"] - prev).dt.total_seconds().fillna(30 * DAY)).to_numpy()
    out["card_since_s"] = np.empty(len(df))
    out["card_since_s"][df["row"].to_numpy()] = since
    out["card_n_1h"] = rolled("one", "1h", "sum")
    out["card_n_10min"] = rolled("one", "10min", "sum")
    return out


SETS = {
    "none": (),
    "max": ("card_max_1d", "card_max_7d", "amount_over_max_7d"),
    "since": ("card_since_s",),
    "vel": ("card_n_1h", "card_n_10min"),
}
SETS["all"] = tuple(c for v in SETS.values() for c in v)


def main() -> None:
    """Each feature set on each seed: the combined score's AUC/AP/CP@100 of the test week."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="101:2500,102:5000,103:7500")
    ap.add_argument("--sets", default="none,max,since,vel,all")
    args = ap.parse_args()
    cfg = Context.from_settings(Settings()).training
    keys = args.sets.split(",")
    res: dict[str, list[tuple[float, ...]]] = {k: [] for k in keys}
    for pair in args.seeds.split(","):
        seed, n = (int(v) for v in pair.split(":"))
        base = simulate(seed, n, N_DAYS)
        base.online_score = online_scores(base)
        extra = candidates(base.card, base.epoch, base.X[:, base.names.index("amount")])
        test = base.day >= TEST_START
        X0, names0 = base.X, base.names
        for k in keys:
            t0 = time.monotonic()
            base.X = np.column_stack([X0, *(extra[c] for c in SETS[k])])
            base.names = (*names0, *SETS[k])
            row = quality(base, test, riverwatch(base, test, cfg)["combined (raw)"])
            res[k].append(row)
            print(f"{seed:>4} {k:<6} " + " ".join(f"{v:.3f}" for v in row)
                  + f"  ({time.monotonic() - t0:.0f} s)", flush=True)  # fmt: skip
        base.X, base.names = X0, names0
    print("\nmean, then min over seeds: combined AUC/AP/CP@100")
    for k in keys:
        v = np.array(res[k])
        print(f"{k:<6} " + " ".join(f"{m:.3f}" for m in v.mean(0))
              + "   min " + " ".join(f"{m:.3f}" for m in v.min(0)))  # fmt: skip


if __name__ == "__main__":
    main()
