"""Fraud-detection quality through the running system, on the Fraud Detection Handbook protocol.

The simulator (Handbook scale by default: 5,000 customers, 10,000 terminals) is pushed through
Kafka into real workers (a scorer and a helper process, as `riverwatch up` runs them) and
Valkey, one simulated day at a time (that day's due labels, then its transactions, each phase
processed before the next), with labels 7 simulated days late.

Timeline (days): [0, WARMUP) feature history; then TRAIN days the batch model trains on and
HOLDOUT days it is judged on; then the 7-day label delay; then the TEST week. At the start of
the test week a retrain is requested on the `control` topic, exactly as the policy would: the
trainer trains a challenger on the labeled data, and promotes it when it beats the champion.
During the test week the online model keeps learning from delayed labels (prequential).
Every test-week score is the one the system produced at scoring time.

Next to the system's scores the table shows an *oracle*: a scorer that knows every fraud except
those no label received so far could reveal (see :class:`Oracle`). Its AUC is the ceiling any
model can reach on that seed's test week: on the Handbook's protocol about a fifth of the
test-week frauds are at terminals compromised less than the label delay ago, which look exactly
like legitimate payments (measured over 16 seeds, 16-23% of frauds, an AUC ceiling of
0.886-0.920).

Environment: RW_Q_SEED (default 7), RW_Q_CUSTOMERS (5000), RW_Q_TERMINALS (10000),
RW_Q_WARMUP (30), RW_Q_TRAIN (21), RW_Q_HOLDOUT (7).
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import redis
from confluent_kafka import Producer

from bench import stack_settings
from bench.quality_io import push_day, read_scores, retrain_when_free
from riverwatch.core.names import Names
from riverwatch.models.evaluation import card_precision_at_k
from riverwatch.shell.embedded import EmbeddedStack
from riverwatch.simulator import SimConfig, SimEvent, TransactionSimulator
from riverwatch.simulator.base import DAY_S
from riverwatch.simulator.days import TERMINAL_DAYS
from tests.support.workers import deployed

SEED = int(os.environ.get("RW_Q_SEED", "7"))
CUSTOMERS = int(os.environ.get("RW_Q_CUSTOMERS", "5000"))
TERMINALS = int(os.environ.get("RW_Q_TERMINALS", "10000"))
WARMUP = int(os.environ.get("RW_Q_WARMUP", "30"))
TRAIN = int(os.environ.get("RW_Q_TRAIN", "21"))
HOLDOUT = int(os.environ.get("RW_Q_HOLDOUT", "7"))
DELAY, TEST = 7, 7
BASELINES = [  # Handbook, simulated data: AUC, AP, CP@100
    ("Handbook logistic regression", 0.871, 0.606, 0.291),
    ("Handbook random forest", 0.867, 0.658, 0.287),
    ("Handbook XGBoost", 0.862, 0.639, 0.273),
    ("Handbook best published", None, 0.687, 0.305),
]


def main() -> None:
    """Run the protocol and print the table."""
    days = WARMUP + TRAIN + HOLDOUT + DELAY + TEST
    test_start = WARMUP + TRAIN + HOLDOUT + DELAY
    tmp = Path(tempfile.mkdtemp(prefix="riverwatch-quality-"))
    sim = TransactionSimulator(
        SimConfig(
            seed=SEED,
            n_customers=CUSTOMERS,
            n_terminals=TERMINALS,
            n_days=days,
            label_delay_days=DELAY,
        )
    )
    t0 = sim.config.start.timestamp()
    print(
        f"quality benchmark: seed {SEED}, {CUSTOMERS} customers, {TERMINALS} terminals, "
        f"{days} days (test week = days {test_start}-{test_start + TEST - 1})",
        flush=True,
    )
    truth: dict[str, tuple[int, str, bool, bool]] = {}  # event_id -> (day, card, fraud, hidden)
    oracle = Oracle()
    with EmbeddedStack(tmp) as stack:
        settings = stack_settings(
            stack,
            tmp / "data",
            "q-",
            label_delay_days=DELAY,
            train_days=TRAIN,
            holdout_days=HOLDOUT,
        )
        names = Names(settings.topic_prefix)
        r = redis.Redis.from_url(settings.redis_url or "")
        p = Producer(
            {"bootstrap.servers": stack.bootstrap, "enable.idempotence": True, "linger.ms": 5}
        )
        labels_sent = 0
        started = time.monotonic()
        with deployed(settings, tmp / "worker.log", split=True):  # as `riverwatch up` runs
            by_day = itertools.groupby(sim.events(), key=lambda ev: int((ev.at - t0) // 86400))
            for day, events in by_day:
                if day == test_start:
                    retrain_when_free(settings, names, p, now=t0 + test_start * 86400)
                evs = list(events)
                # The order push_day sends them in: the day's labels, then its transactions.
                oracle.labels(ev for ev in evs if ev.topic == "labels")
                for ev in evs:
                    if ev.topic == "transactions":
                        hidden = oracle.transaction(ev)
                        if day >= test_start:
                            truth[ev.payload["event_id"]] = (day, ev.key, bool(ev.fraud), hidden)
                labels_sent += push_day(p, names, r, evs, labels_sent)
                if day % 5 == 0:
                    print(f"  day {day}: {time.monotonic() - started:.0f} s", flush=True)
            scores = read_scores(settings, names, set(truth))
    report(scores, truth, test_start)


class Oracle:
    """Which frauds no label received before them could reveal (the simulator's ground truth).

    A compromised terminal (scenario 2) makes every payment there for 28 days a fraud that
    looks like a legitimate one: only a fraud label from that compromise gives it away, and
    labels come ``label_delay`` late. So a scenario-2 fraud at a terminal from which no
    scenario-2 fraud label of the last 28 days had arrived by its time is *hidden*: no model can
    rank it better than chance. Every other fraud is assumed findable (generous: a few
    scenario-3 frauds look ordinary too), so the oracle's metrics are an upper bound.

    >>> from riverwatch.simulator import SimEvent
    >>> tx = lambda eid, at, sc: SimEvent(at, "transactions", "card-1",
    ...     {"event_id": eid, "terminal_id": "t1"}, sc > 0, sc)
    >>> label = lambda eid, at: SimEvent(at, "labels", eid, {"event_id": eid, "label": 1})
    >>> o = Oracle()
    >>> o.transaction(tx("a", 0.0, 2)), o.transaction(tx("b", 10.0, 0))
    (True, False)
    >>> o.labels([label("a", 100.0)])   # the label arrives at t=100
    >>> o.transaction(tx("c", 50.0, 2)), o.transaction(tx("d", 100.0, 2))
    (True, False)
    >>> o.transaction(tx("e", 29 * 86_400.0, 2))   # 29 days on: a later compromise
    True
    """

    def __init__(self) -> None:
        self.fraud_at: dict[str, tuple[str, float]] = {}  # sc-2 fraud id -> (terminal, time)
        self.revealed: dict[str, list[tuple[float, float]]] = {}  # terminal -> (arrival, tx time)

    def labels(self, events: Iterable[SimEvent]) -> None:
        """Labels, in the order the system receives them."""
        for ev in events:
            hit = self.fraud_at.pop(ev.payload["event_id"], None)
            if hit is not None and ev.payload["label"]:
                self.revealed.setdefault(hit[0], []).append((ev.at, hit[1]))

    def transaction(self, ev: SimEvent) -> bool:
        """A transaction, in the order the system receives it: True when a hidden fraud."""
        if ev.scenario != 2:
            return False
        term = ev.payload["terminal_id"]
        self.fraud_at[ev.payload["event_id"]] = (term, ev.at)
        return not any(
            arrived <= ev.at and ev.at - at < TERMINAL_DAYS * DAY_S
            for arrived, at in self.revealed.get(term, ())
        )


def report(
    scores: pd.DataFrame, truth: dict[str, tuple[int, str, bool, bool]], test_start: int
) -> None:
    """Print per-day and overall AUC, AP and CP@100 for the online, batch and combined scores."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    t = pd.DataFrame(
        [(e, *v) for e, v in truth.items()], columns=["event_id", "day", "card", "fraud", "hidden"]
    )
    df = t.merge(scores, on="event_id", how="left")
    # The oracle ranks every fraud it can know of first and the hidden ones among the rest.
    df["oracle"] = (df["fraud"] & ~df["hidden"]).astype(float)
    missing = int(df["score"].isna().sum())
    df["batch_score"] = df["batch_score"].astype(float)
    with_batch = int(df["batch_score"].notna().sum())
    print(f"batch champion scored {with_batch} of {len(df)} test-week transactions")
    cols = [("online", "online_score"), ("batch", "batch_score"), ("combined", "score")]
    hidden = int(df["hidden"].sum())
    print(
        f"hidden frauds (at a terminal no fraud label had revealed yet): {hidden} of "
        f"{int(df['fraud'].sum())}"
    )
    print(
        f"\ntest week: {len(df)} transactions, {int(df['fraud'].sum())} frauds, "
        f"{missing} without a score; days {test_start}-{test_start + TEST - 1}"
    )
    print(f"{'day':>5} " + " ".join(f"{n + ' AUC/AP/CP@100':>28}" for n, _ in cols))
    for day, g in df.groupby("day"):
        cells = []
        for _, col in cols:
            if g[col].isna().all() or g["fraud"].nunique() < 2:
                cells.append(f"{'-':>28}")
                continue
            cp = card_cp(g, col)
            cells.append(
                f"{roc_auc_score(g['fraud'], g[col]):9.3f}"
                f"{average_precision_score(g['fraud'], g[col]):9.3f}{cp:10.3f}"
            )
        print(f"{day:>5} " + " ".join(cells))
    print(f"\n{'overall (test week)':<32}{'AUC':>8}{'AP':>8}{'CP@100':>8}")
    for name, col in cols:
        if df[col].isna().all():
            print(f"{'riverwatch ' + name:<32}{'(no scores)':>24}")
            continue
        d = df.dropna(subset=[col])
        print(
            f"{'riverwatch ' + name:<32}{roc_auc_score(d['fraud'], d[col]):8.3f}"
            f"{average_precision_score(d['fraud'], d[col]):8.3f}{card_cp(d, col):8.3f}"
        )
    print(
        f"{'oracle (ceiling, see Oracle)':<32}{roc_auc_score(df['fraud'], df['oracle']):8.3f}"
        f"{average_precision_score(df['fraud'], df['oracle']):8.3f}{card_cp(df, 'oracle'):8.3f}"
    )
    for name, auc, ap, cp in BASELINES:
        print(f"{name:<32}{'-' if auc is None else f'{auc:.3f}':>8}{ap:8.3f}{cp:8.3f}")
    print("target (combined)                  0.900   0.720   0.330")


def card_cp(df: pd.DataFrame, col: str) -> float:
    """Card Precision@100 averaged over the days of ``df`` (Handbook definition)."""
    return card_precision_at_k(df["day"], df["card"], df["fraud"], df[col], k=100).mean


if __name__ == "__main__":
    main()
