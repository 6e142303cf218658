"""The stream's model path replayed in pure code, for the many-seed quality benchmark.

What `riverwatch up` does to a simulated stream, without Kafka or Valkey, one simulated day
at a time in the order bench/quality.py pushes it (that day's due labels, then its
transactions):

* features: :meth:`models.feature_set.FeatureSet.step` on each transaction in time order, the
  learner's terminal fraud increments (on the transaction's bucket) for each fraud label;
* the online model: :func:`models.online.learn` on every label as it arrives (the learner),
  :func:`models.online.score_batch` on the day's transactions (the scorer; a snapshot is
  published every 500 labels or 2 s, so the live scorer is at most that far behind);
* the batch model: :func:`models.training.train_and_evaluate` on the labels matured by a
  retrain's time, with the champion/challenger decision and the blend weight
  (streams/trainer.py's ``retrain``), and :func:`models.scoring`'s blend.

The feature matrix does not depend on any model (labels arrive whatever is scored), so it is
computed once per seed and cached (keyed by the source of models/features.py); so are the
online scores (keyed by models/online.py too).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riverwatch.models import features as fdefs
from riverwatch.models import online
from riverwatch.models.feature_set import FeatureSet
from riverwatch.models.features import FeatureSpec, apply_terminal
from riverwatch.simulator import SimConfig
from riverwatch.simulator.base import DAY_S, epoch_seconds
from riverwatch.simulator.days import TERMINAL_DAYS, DayGenerator
from riverwatch.simulator.population import build_population

DELAY = 7
CACHE = Path(os.environ.get("RW_Q_CACHE", Path.home() / ".cache" / "riverwatch" / "quality"))
# RW_Q_WORLD=handbook: the Handbook's own fraud counts (2 terminals and 3 customers compromised
# a day whatever the population, as issue 17's held-out stream has them) instead of the
# simulator's default, which scales them with the population (1 and 1.5 a day at 2,500
# customers: half the compromised cards, so a Card Precision@100 ceiling of about 0.22).
WORLD = os.environ.get("RW_Q_WORLD", "scaled")
if WORLD not in ("scaled", "handbook"):
    raise SystemExit(f"RW_Q_WORLD must be scaled or handbook, got {WORLD!r}")
_RATES = {"scaled": {}, "handbook": {"compromised_terminals_per_day": 2.0,
                                     "compromised_customers_per_day": 3.0}}  # fmt: skip
TAG = "" if WORLD == "scaled" else "hb-"


def _source_key(*modules: object) -> str:
    h = hashlib.sha1()
    for m in modules:
        h.update(Path(m.__file__).read_bytes())  # type: ignore[attr-defined]
    return h.hexdigest()[:12]


# Read once at import: the cache is keyed by the code this process runs.
FEATURES_KEY = _source_key(fdefs)
ONLINE_KEY = _source_key(fdefs, online)


@dataclass
class Stream:
    """One seed's transactions (time order) with their ground truth and stream features."""

    seed: int
    customers: int
    day: np.ndarray
    epoch: np.ndarray
    card: np.ndarray
    terminal: np.ndarray
    fraud: np.ndarray
    scenario: np.ndarray
    X: np.ndarray
    names: tuple[str, ...]
    online_score: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.day)

    def hidden(self) -> np.ndarray:
        """Frauds no label received before their day could reveal (bench.quality.Oracle's rule
        on the day-level order the system receives: a compromised-terminal fraud is hidden
        unless a fraud label from that terminal's compromise of the last 28 days arrived on
        or before its day, i.e. for a transaction at least ``DELAY`` days older)."""
        out = np.zeros(len(self), dtype=bool)
        s2 = np.flatnonzero(self.scenario == 2)
        by_term: dict[int, list[int]] = {}
        for i in s2.tolist():
            by_term.setdefault(int(self.terminal[i]), []).append(i)
        for idx in by_term.values():
            days = self.day[idx]
            ep = self.epoch[idx]
            for j, row in enumerate(idx):
                known = (days <= days[j] - DELAY) & (ep[j] - ep < TERMINAL_DAYS * DAY_S)
                out[row] = not known.any()
        return out


def cached(seed: int, customers: int, n_days: int) -> bool:
    """Whether another run has already replayed this seed (features and online scores)."""
    tail = f"{TAG}{seed}-{customers}-{n_days}"
    return (CACHE / f"stream-{tail}-{FEATURES_KEY}.npz").exists() and (
        CACHE / f"online-{tail}-{ONLINE_KEY}.npy"
    ).exists()


def simulate(seed: int, customers: int, n_days: int) -> Stream:
    """The seed's stream with its features as the stream computes them (cached)."""
    fs = FeatureSet()
    key = f"{TAG}{seed}-{customers}-{n_days}-{FEATURES_KEY}"
    path = CACHE / f"stream-{key}.npz"
    if path.exists():
        z = np.load(path)
        return Stream(seed, customers, **{k: z[k] for k in _FIELDS}, names=fs.names)
    cfg = SimConfig(seed=seed, n_customers=customers, n_terminals=2 * customers,
                    n_days=n_days, label_delay_days=DELAY, **_RATES[WORLD])  # fmt: skip
    gen = DayGenerator(cfg, build_population(customers, 2 * customers, cfg.radius, seed))
    start = epoch_seconds(cfg.start)
    spec = FeatureSpec(3600, DELAY)
    cards: dict[int, dict[int, list[float]]] = {}
    terms: dict[int, dict[int, list[float]]] = {}
    cols: dict[str, list[np.ndarray]] = {k: [] for k in _FIELDS}
    rows: list[list[float]] = []
    for d in range(n_days):
        if d >= DELAY:  # that day's labels first: the learner counts frauds on the tx bucket
            fraud = cols["fraud"][d - DELAY]
            for t, e in zip(cols["terminal"][d - DELAY][fraud].tolist(),
                            cols["epoch"][d - DELAY][fraud].tolist(), strict=True):  # fmt: skip
                apply_terminal(terms.setdefault(t, {}), spec.bucket(e), 1.0, 0.0)
        a = gen.day(d)
        ep = (a.t + start + d * DAY_S).astype(float)
        for e, c, t, amt in zip(ep.tolist(), a.cust.tolist(), a.term.tolist(),
                                a.amount.tolist(), strict=True):  # fmt: skip
            x, _ = fs.step(spec, e, amt, {}, cards.setdefault(c, {}), terms.setdefault(t, {}))
            rows.append(x)
        cols["day"].append(np.full(len(a), d))
        cols["epoch"].append(ep)
        cols["card"].append(a.cust)
        cols["terminal"].append(a.term)
        cols["fraud"].append(a.label.astype(bool))
        cols["scenario"].append(a.scenario)
        _prune(spec, cards, terms, now=spec.bucket(start + (d + 1) * DAY_S))
    arrays = {k: np.concatenate(v) for k, v in cols.items() if k != "X"}
    arrays["X"] = np.asarray(rows, dtype=float)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return Stream(seed, customers, **arrays, names=fs.names)


_FIELDS = ("day", "epoch", "card", "terminal", "fraud", "scenario", "X")


def _prune(spec: FeatureSpec, *entities: dict[int, dict[int, list[float]]], now: int) -> None:
    """Drop buckets no window can reach again (the stream's store expires them too)."""
    oldest = spec.oldest_needed(now)
    for group in entities:
        for buckets in group.values():
            for b in [b for b in buckets if b < oldest]:
                del buckets[b]


def online_scores(s: Stream) -> np.ndarray:
    """The online model's score of each transaction at its scoring time (cached)."""
    key = f"{TAG}{s.seed}-{s.customers}-{int(s.day.max()) + 1}-{ONLINE_KEY}"
    path = CACHE / f"online-{key}.npy"
    if path.exists():
        return np.load(path)  # type: ignore[no-any-return]
    model = online.make_model()
    out = np.empty(len(s))
    bounds = np.searchsorted(s.day, np.arange(int(s.day.max()) + 2))
    for d in range(len(bounds) - 1):
        if d >= DELAY:
            lo, hi = bounds[d - DELAY], bounds[d - DELAY + 1]
            for row, y in zip(s.X[lo:hi].tolist(), s.fraud[lo:hi].tolist(), strict=True):
                online.learn(model, dict(zip(s.names, row, strict=True)), int(y))
        lo, hi = bounds[d], bounds[d + 1]
        out[lo:hi] = online.score_batch(model, s.X[lo:hi], s.names)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def labeled(s: Stream, now_day: int) -> pd.DataFrame:
    """The offline store's rows at the start of day ``now_day``: every label arrived before it
    (transactions of days <= now_day - DELAY - 1), as streams/learning.py stores them."""
    keep = s.day <= now_day - DELAY - 1
    df = pd.DataFrame(s.X[keep], columns=list(s.names))
    df["epoch"] = s.epoch[keep]
    df["card_id"] = s.card[keep]
    df["label"] = s.fraud[keep].astype(int)
    df["online_score"] = s.online_score[keep] if s.online_score is not None else np.nan
    return df
