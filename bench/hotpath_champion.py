"""A batch champion for the scorer benchmarks: ``RW_HOT_CHAMPION=k`` (bench.hotpath) and
``RW_BENCH_CHAMPION=k`` (bench.pipeline) promote one of k members before the scorer starts.

0 (the default) measures the scorer as the figures before it did, with the online model
alone: no retrain has promoted a champion there. A running system serves one from its first
retrain on, and then every transaction is also scored by it (``models.scoring``), so its
cost belongs in the scorer's per-event figure. The champion is fitted on 20,000 synthetic
rows of the scorer's features with early stopping on but never reached (``n_iter_no_change``
above ``max_iter``): each member builds exactly ``TREES`` trees, about as many as the quality
benchmark's champions stop at (54-60 on handbook seed 102, 21 training days), with every
leaf the defaults allow, so a row costs what it costs on a real champion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.batch import train_batch
from riverwatch.models.feature_set import FeatureSet
from riverwatch.stores.registry import Registry
from riverwatch.streams.scorer import Scorer

TREES = 56


def promote(settings: Settings, members: int) -> str:
    """Register and promote a ``members``-member champion in ``settings``' registry (Valkey
    and data_dir, where workers started on them load it); its name."""
    names = FeatureSet(settings.feature_attributes).names
    rng = np.random.default_rng(0)
    X = rng.lognormal(size=(20_000, len(names)))
    y = (X[:, 0] + X[:, 1] * rng.random(len(X)) > 6.0).astype(int)
    model = train_batch(X, y, names, max_iter=TREES, early_stopping=True,
                        n_iter_no_change=TREES + 1, members=members)  # fmt: skip
    r = redis_client(redis_config(settings))
    reg = Registry(r, Names(settings.topic_prefix), settings.data_dir)
    v = reg.register(model, data_window=(0.0, 1.0), holdout_window=(1.0, 2.0),
                     metrics={"auc": 0.9, "ap": 0.5, "cp@100": 0.1}, features=names,
                     info={"blend_weight": 0.5}, reason="benchmark")  # fmt: skip
    reg.promote(v.name, "benchmark")
    r.close()
    print(f"champion {v.name}: {members} member(s) of {TREES} trees", flush=True)
    return v.name


def install(sc: Scorer, settings: Settings, members: int) -> None:
    """:func:`promote`, then check that the scorer serves it."""
    name = promote(settings, members)
    champ = sc.models.current().champion
    if champ is None or champ.name != name:
        raise SystemExit(f"the scorer does not serve the benchmark's champion {name}")


def served(log: Path, name: str) -> None:
    """Exit unless a worker's log says it loaded champion ``name`` (bench.pipeline)."""
    if f"champion {name}," not in log.read_text(errors="replace"):
        raise SystemExit(f"the scorer ({log}) does not serve the benchmark's champion {name}")
