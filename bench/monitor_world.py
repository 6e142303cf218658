"""The worlds of the monitor benchmark (bench/monitor.py): its scenarios, the simulated days
with the scorer's features, and the champion trained once on another world."""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any

import numpy as np

from riverwatch.models.batch import BatchClassifier, train_batch
from riverwatch.models.features import FEATURE_NAMES, FeatureSpec, apply_terminal, step
from riverwatch.simulator import GroupBias, Shift, SimConfig
from riverwatch.simulator.base import DAY_S, epoch_seconds
from riverwatch.simulator.days import CATEGORY_NAMES, DayGenerator
from riverwatch.simulator.population import build_population

# The change comes after the monitor's warm-up (37 days: the longest feature window, 30 days,
# ending a label delay back for the terminals) and its 7-day reference; 18 days follow it.
DAYS, CHANGE, DELAY = 63, 45, 7
CUSTOMERS, TERMINALS = 1500, 3000
TRAIN_SEED, TRAIN_DAYS = 999, (30, 45)
TUNE_SEEDS, REPORT_SEEDS, FRESH_SEEDS = (1, 2, 6, 7), (3, 4, 5), (8, 9, 10)
REF_DAYS = (37, 44)  # the reference's event days (warm-up 37 days, reference 7)
# "drift (labels)": a ``drift`` alert on subject ``labels`` (the label shift, judged on the
# realised labels), apart from the other drift alerts (features, scores)
KINDS = ("drift", "drift (labels)", "fairness", "performance", "quality", "retrain")
LABEL_KINDS = ("drift (labels)", "performance")  # their delays also count from the labels


def kind_of(kind: str, subject: str) -> str:
    """The benchmark's kind of an alert (see :data:`KINDS`)."""
    return "drift (labels)" if kind == "drift" and subject == "labels" else kind


# scenario -> (SimConfig changes, the alert kind that should catch it)
SCENARIOS: dict[str, tuple[dict[str, Any], str | None]] = {
    "none": ({}, None),
    "spend x1.5, region=south": (
        {"shifts": (Shift("amount", CHANGE, 1.5, "region", "south"),)},
        "drift",
    ),
    "new fraud pattern": ({"drift_day": CHANGE}, "performance"),
    "fraud x3 inflow (gradual label shift)": (
        {"shifts": (Shift("fraud", CHANGE, 3.0),)},
        "drift (labels)",
    ),
    "fraud x3 step (label shift)": (
        {"shifts": (Shift("fraud_step", CHANGE, 3.0),)},
        "drift (labels)",
    ),
    "bias vs age_band=65+": ({"bias": GroupBias(spike_share=0.3, from_day=CHANGE)}, "fairness"),
    "outage, region=east 2d": (
        {"shifts": (Shift("outage", CHANGE, attribute="region", group="east"),)},
        "quality",
    ),
    "gradual spend x1.6/10d": ({"shifts": (Shift("amount", CHANGE, 1.6, ramp_days=10),)}, "drift"),
}


# where a scenario's shift is, as a features drift alert should name it ("*": every event)
WHERE = {
    "spend x1.5, region=south": "region=south",
    "bias vs age_band=65+": "age_band=65+",
    "gradual spend x1.6/10d": "*",
}


def world(seed: int, **changes: Any) -> SimConfig:
    """The simulated world of one run."""
    return SimConfig(
        seed=seed, n_customers=CUSTOMERS, n_terminals=TERMINALS, n_days=DAYS,
        label_delay_days=DELAY, **changes,
    )  # fmt: skip


def simulate(cfg: SimConfig, days: int) -> list[dict[str, Any]]:
    """Per day: the payments' epochs, features, labels, groups and categorical fields (features
    as the scorer computes them, terminal risk from labels once they are due)."""
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
            # the payment's categorical fields, as the simulator's payloads carry them
            "channel": np.where(a.online, "online", "pos").tolist(),
            "category": [CATEGORY_NAMES[k] for k in a.category.tolist()],
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
