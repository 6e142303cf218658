"""The scorer benchmarks' champion (bench/hotpath_champion.py) is really scored with."""

from __future__ import annotations

import time

import numpy as np
import orjson
import pytest

from bench import hotpath, hotpath_champion
from bench.openloop import payloads
from riverwatch.core.settings import Settings

pytestmark = pytest.mark.integration


def test_the_benchmark_champion_scores_every_transaction(settings: Settings) -> None:
    sc = hotpath.scorer(settings)
    hotpath_champion.install(sc, settings, members=2)
    champ = sc.models.current().champion
    assert champ is not None and type(champ.estimator.estimator).__name__ == "Bagged"
    topic = sc.names.topic("transactions")
    out = sc.process(hotpath.records(payloads(20, np.full(20, time.time()), 0, "t-"), topic))
    scores = [orjson.loads(o.value) for o in out if o.topic == sc.names.topic("scores")]
    assert len(scores) == 20
    assert all(s["batch_score"] is not None and 0 <= s["batch_score"] <= 1 for s in scores)
