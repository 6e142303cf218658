"""bench/quality_replay gives the stream's features: the same rows as models.features_replay.replay
on the simulator's events in the order bench/quality.py pushes them (a day's labels, then its
transactions)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from bench import quality_replay
from riverwatch.models.features import FeatureSpec
from riverwatch.models.features_replay import replay
from riverwatch.simulator import SimConfig, TransactionSimulator


def test_the_replay_computes_the_stream_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quality_replay, "CACHE", tmp_path)
    seed, customers, days = 5, 500, 12
    s = quality_replay.simulate(seed, customers, days)
    sim = TransactionSimulator(
        SimConfig(seed=seed, n_customers=customers, n_terminals=2 * customers, n_days=days,
                  label_delay_days=quality_replay.DELAY)
    )  # fmt: skip
    t0 = sim.config.start.timestamp()
    history: list[tuple[object, ...]] = []
    for _, evs in itertools.groupby(sim.events(), key=lambda ev: int((ev.at - t0) // 86_400)):
        day = list(evs)
        for ev in day:
            if ev.topic == "labels":
                history.append(("label", ev.payload["event_id"], ev.payload["label"]))
        for ev in day:
            if ev.topic == "transactions":
                p = ev.payload
                history.append(("tx", p["event_id"], ev.at, p["card_id"], p["terminal_id"],
                                p["amount"]))  # fmt: skip
    want = replay(FeatureSpec(3600, quality_replay.DELAY), history)
    assert len(want) == len(s) > 0
    X = np.array([want[f"tx-{seed}-{n}"] for n in range(len(s))])
    np.testing.assert_allclose(s.X, X, rtol=1e-12, atol=1e-9)
    risk = s.X[:, s.names.index("term_risk_1d")]
    assert s.fraud[s.day < days - quality_replay.DELAY].any() and risk.max() > 0  # labels used
    # the cache gives the same stream back
    again = quality_replay.simulate(seed, customers, days)
    np.testing.assert_array_equal(again.X, s.X)


def test_the_handbook_world_keeps_the_handbooks_fraud_counts_at_any_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RW_Q_WORLD=handbook: 2 terminals and 3 customers compromised a day whatever the
    population (the simulator's default scales them: 0.1 and 0.3 a day at 500 customers)."""
    monkeypatch.setattr(quality_replay, "CACHE", tmp_path)
    seed, customers, days = 5, 500, 10
    scaled = quality_replay.simulate(seed, customers, days)
    monkeypatch.setattr(quality_replay, "WORLD", "handbook")
    monkeypatch.setattr(quality_replay, "TAG", "hb-")
    hb = quality_replay.simulate(seed, customers, days)
    assert len(list(tmp_path.glob("stream-hb-*.npz"))) == 1  # cached apart from the scaled one

    def compromised(s: quality_replay.Stream, scenario: int, of: np.ndarray) -> int:
        return len(set(of[s.scenario == scenario].tolist()))

    # the same legitimate traffic; scenario-3 cards: about 3 a day from day 0 (a third of
    # their payments), against 0.3 a day scaled
    np.testing.assert_array_equal(hb.card, scaled.card)
    assert compromised(hb, 3, hb.card) >= 10 > compromised(scaled, 3, scaled.card)
    assert compromised(hb, 2, hb.terminal) > compromised(scaled, 2, scaled.terminal)
