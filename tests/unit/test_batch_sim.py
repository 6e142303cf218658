"""Labeled offline-store rows from the simulator, as the running system would store them.

``labeled_rows`` replays the simulator's events in order through ``models.features.step`` and
adds a fraud to its terminal's bucket only when the label arrives, exactly as the label
learner does, so the rows carry the features the scorer would have computed. Other tests
(unit and integration) import it to get realistic training data without a broker.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from models import features
from riverwatch.simulator import SimConfig, TransactionSimulator

START = datetime(2026, 1, 1, tzinfo=UTC)


def labeled_rows(
    n_days: int,
    customers: int = 300,
    terminals: int = 600,
    seed: int = 0,
    delay_days: int = 7,
) -> list[dict[str, Any]]:
    """Offline-store rows (one per labeled transaction, in label order) of a simulation."""
    spec = features.FeatureSpec(3600, delay_days)
    sim = TransactionSimulator(
        SimConfig(
            seed=seed,
            n_customers=customers,
            n_terminals=terminals,
            n_days=n_days,
            start=START,
            label_delay_days=delay_days,
        )
    )
    cards: dict[str, dict[int, list[float]]] = {}
    terms: dict[str, dict[int, list[float]]] = {}
    pending: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    names = features.FEATURE_NAMES
    for ev in sim.events():
        p = ev.payload
        if ev.topic == "transactions":
            x = features.step(
                spec,
                ev.at,
                p["amount"],
                cards.setdefault(p["card_id"], {}),
                terms.setdefault(p["terminal_id"], {}),
            )
            pending[p["event_id"]] = {
                "event_id": p["event_id"],
                "card_id": p["card_id"],
                "terminal_id": p["terminal_id"],
                "epoch": ev.at,
                "score": 0.0,
                "online_score": 0.0,
                "batch_score": None,
                "decision": "approve",
                "groups": p["groups"],
                **dict(zip(names, x, strict=True)),
            }
        elif ev.topic == "labels":
            row = pending.pop(p["event_id"])
            if p["label"]:
                b = spec.bucket(row["epoch"])
                features.apply_terminal(terms[row["terminal_id"]], b, frauds=1.0, count=0.0)
            out.append({**row, "label": int(p["label"])})
    return out


@cache
def _frame(n_days: int, customers: int, terminals: int) -> pd.DataFrame:
    return pd.DataFrame(labeled_rows(n_days, customers, terminals))


def labeled_frame(n_days: int = 45, customers: int = 300, terminals: int = 600) -> pd.DataFrame:
    """:func:`labeled_rows` as a DataFrame, simulated once per session (a copy each call)."""
    return _frame(n_days, customers, terminals).copy()


def test_rows_look_like_the_handbook_data() -> None:
    rows = labeled_rows(n_days=20, customers=200, terminals=400)
    assert len(rows) > 2000
    y = np.array([r["label"] for r in rows])
    assert 0.002 < y.mean() < 0.05  # the Handbook's fraud rate is ~0.5-1%
    assert all(set(features.FEATURE_NAMES) <= set(r) for r in rows[:10])
    # a finite simulation labels every transaction, the last week's at the end
    assert max(r["epoch"] for r in rows) < START.timestamp() + 20 * 86_400
    # delayed terminal risk: zero during the first delay, non-zero somewhere afterwards
    assert all(
        r["term_risk_7d"] == 0.0 for r in rows if r["epoch"] < START.timestamp() + 7 * 86_400
    )
    assert any(r["term_risk_7d"] > 0 for r in rows)
