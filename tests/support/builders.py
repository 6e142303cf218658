"""Builders of test records: transactions for Kafka (``tx``) and for the API (``payload``),
labeled training frames from the simulator, and a card's count as stored in Redis.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pandas as pd
import redis

from riverwatch.core.names import Names
from riverwatch.models import features
from riverwatch.simulator import SimConfig, TransactionSimulator

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def tx(i: int, card: str = "c1", terminal: str = "t1", amount: float = 10.0) -> bytes:
    return json.dumps(
        {
            "event_id": f"e{i}",
            "timestamp": T0 + i * 60,
            "card_id": card,
            "terminal_id": terminal,
            "amount": amount,
        }
    ).encode()


def card_count(r: redis.Redis, names: Names, card: str) -> float:
    """Transactions counted on a card's buckets in Redis."""
    h: dict[bytes, bytes] = r.hgetall(names.entity("card", card))  # type: ignore[assignment]
    return sum((float(v) for k, v in h.items() if k.startswith(b"n:")), 0.0)


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


def payload(i: int, **extra: object) -> dict[str, object]:
    """A valid transaction as a client posts it (JSON), with ``extra`` fields."""
    return {
        "event_id": f"e{i}",
        "timestamp": 1_700_000_000 + i,
        "card_id": f"c{i % 3}",
        "terminal_id": "t1",
        "amount": 10.0 + i,
        **extra,
    }
