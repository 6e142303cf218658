"""The scoring handler: a micro-batch of transactions in, scores (and alerts) out.

Per batch: validate each record (bad ones -> deadletter), one Redis round trip to read the
already-scored markers and the stored window sums of each card and terminal (summed in Redis:
stores.features), features in event order, one
vectorized predict, one MULTI/EXEC to write counters, scores and feature rows.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import orjson

from riverwatch.context import Context
from riverwatch.core.events import Transaction
from riverwatch.core.metrics import EVENTS, SCORE_LATENCY, count_fills, observe_many
from riverwatch.models.features import WINDOWS_DAYS, Buckets, safe_amount
from riverwatch.models.features_batch import lone_rows
from riverwatch.models.livestats import batch_stats
from riverwatch.models.scoring import score_matrix, score_record
from riverwatch.models.serving import ModelSet
from riverwatch.monitors.dataquality.rows import OPTIONAL, row_quality
from riverwatch.stores.features import Increments, Query, RedisFeatureStore, WindowSums
from riverwatch.streams.derived import DerivedSeries
from riverwatch.streams.records import Out, Record, dead_letters, iso, parse_batch
from riverwatch.streams.rejects import RejectCounter

log = logging.getLogger(__name__)


# The fewest lone transactions a batch computes with numpy (models.features_batch): below,
# ``step`` per transaction is cheaper (its fixed cost ~50 us against ~7 us a row, measured).
LONE_MIN = 16


class Scorer:
    """Scores micro-batches of raw ``transactions`` records."""

    def __init__(self, ctx: Context, store: RedisFeatureStore, models: ModelSet, worker: str):
        self.cfg = ctx.worker_config
        self.limits = ctx.limits
        self.names = ctx.names
        self.store = store
        self.models = models
        self.thresholds = ctx.thresholds
        self.worker = worker
        self.spec = ctx.spec
        self.features = ctx.features
        self.t_scores = self.names.topic("scores")
        self.t_alerts = self.names.topic("alerts")
        self.t_dead = self.names.topic("deadletter")
        self.derived = DerivedSeries(ctx, store.r)
        self.rejects = RejectCounter(store.r, self.names, "transactions", count_valid=False)

    def process(self, records: list[Record]) -> list[Out]:
        """Score a batch; return the records to produce. Never raises for one bad record."""
        broken: list[set[str]] = []
        txs, bad = parse_batch(Transaction, records, self.limits, broken)
        outs = dead_letters(self.t_dead, bad, self.worker)
        if broken:  # the monitor's data-quality counters (core.rejects), once per record
            self.rejects.count(records, zip((rec for rec, _ in bad), broken, strict=True))
        if txs:
            outs += self._score(txs)
        return outs

    def _queries(
        self, txs: list[tuple[Record, Transaction]]
    ) -> tuple[list[Query], dict[tuple[str, str], int]]:
        """The window sums a batch needs from the store, and the days each entity may prune."""
        spec = self.spec
        queries: list[Query] = []
        prune: dict[tuple[str, str], int] = {}
        delay = spec.delay_buckets
        for _, tx in txs:
            b = spec.bucket(tx.epoch)
            card, term = ("card", tx.card_id), ("terminal", tx.terminal_id)
            queries.append(("card", tx.card_id, b))
            queries.append(("terminal", tx.terminal_id, b - delay))
            day = spec.prune_day(b)
            if prune.get(card, day) <= day:  # the latest day of the batch per entity
                prune[card] = day
            if prune.get(term, day) <= day:
                prune[term] = day
        return queries, prune

    def _score(self, txs: list[tuple[Record, Transaction]]) -> list[Out]:
        eids = [tx.event_id for _, tx in txs]
        queries, prune = self._queries(txs)
        # Window values are cached for the next query of an entity at the same bucket only for
        # transactions from a day before now on (a lagging producer's too): a backfill's each
        # query a later bucket than the last (stores.feature_read, READ).
        live = self.spec.bucket(time.time()) - self.spec.per_day
        edge = {"card": live, "terminal": live - self.spec.delay_buckets}
        existing, base = self.store.read(eids, queries, self.spec.per_day, WINDOWS_DAYS, edge)
        outs: list[Out] = []
        fresh: list[tuple[Record, Transaction]] = []
        seen: set[str] = set()
        for (rec, tx), prev in zip(txs, existing, strict=True):
            if prev is not None:  # a replay: its counters are applied, re-emit its outputs
                outs += self._replayed(tx, prev)
                continue
            if tx.event_id in seen:  # the same event twice in one batch
                continue
            seen.add(tx.event_id)
            fresh.append((rec, tx))
        EVENTS.labels(topic="transactions", outcome="replayed").inc(len(txs) - len(fresh))
        if not fresh:
            return outs
        X, filled = self._features(fresh, base)
        count_fills([f for per in filled for f in per], "stream")
        inc = Increments()
        quality: list[dict[str, Any]] = []  # per fresh event, for the monitor's data quality
        for i, (rec, tx) in enumerate(fresh):
            values = {f: getattr(tx, f) for f in OPTIONAL}
            quality.append(row_quality(values, filled[i], rec.partition))
            b = self.spec.bucket(tx.epoch)
            amount = safe_amount(tx.amount)  # as the features count it (sum and maximum)
            inc.add("card", tx.card_id, b, 1, amount, amount)
            inc.add("terminal", tx.terminal_id, b, 1, 0.0)
        outs += self._emit(fresh, X, inc, prune, quality)
        return outs

    def _features(
        self, fresh: list[tuple[Record, Transaction]], base: WindowSums
    ) -> tuple[np.ndarray, list[list[tuple[str, str]]]]:
        """The feature rows of a batch's first-time events, and per row the attributes it
        filled (attribute, reason). A transaction alone on its card and its terminal in the batch
        gets its row from the stored sums in one array operation for all of them
        (models.features_batch, bit for bit ``step``'s); the others go through ``step`` in
        order, a card's earlier transactions of the batch counting in its windows (as in
        models.features_replay.replay)."""
        spec, fs = self.spec, self.features
        delay = spec.delay_buckets
        X = np.empty((len(fresh), len(fs.names)))
        lone: list[int] = []  # alone on their card and terminal in the batch
        if len(fresh) >= LONE_MIN:
            n_card = Counter(tx.card_id for _, tx in fresh)
            n_term = Counter(tx.terminal_id for _, tx in fresh)
            lone = [i for i, (_, tx) in enumerate(fresh)
                    if n_card[tx.card_id] == 1 and n_term[tx.terminal_id] == 1]  # fmt: skip
        if len(lone) < LONE_MIN:  # the array path costs ~50 us a batch: too few do not pay
            lone = []
        alone = set(lone)
        fills: list[list[tuple[str, str]]] = [[] for _ in fresh]
        cards: dict[str, Buckets] = defaultdict(dict)
        terms: dict[str, Buckets] = defaultdict(dict)
        for i, (_, tx) in enumerate(fresh):
            if i in alone:
                continue
            b = spec.bucket(tx.epoch)
            X[i], fills[i] = fs.step(
                spec, tx.epoch, tx.amount, tx.attributes, cards[tx.card_id],
                terms[tx.terminal_id], base[("card", tx.card_id, b)],
                base[("terminal", tx.terminal_id, b - delay)],
            )  # fmt: skip
        if lone:
            txs = [fresh[i][1] for i in lone]
            epochs = np.array([tx.epoch for tx in txs])
            at = base.index
            rc, rt = [], []  # each one's row in the read's sums: its card's, its terminal's
            for tx, bk in zip(txs, (spec.bucket(e) for e in epochs.tolist()), strict=True):
                rc.append(at[("card", tx.card_id, bk)])
                rt.append(at[("terminal", tx.terminal_id, bk - delay)])
            amounts = np.array([tx.amount for tx in txs], dtype=float)
            rows = lone_rows(epochs, amounts, base.array[rc], base.array[rt])
            nb = rows.shape[1]
            X[lone, :nb] = rows
            if fs.attributes:
                for i, tx in zip(lone, txs, strict=True):
                    X[i, nb:], fills[i] = fs.extract(tx.attributes)
        return X, fills

    def _emit(
        self,
        fresh: list[tuple[Record, Transaction]],
        X: np.ndarray,
        inc: Increments,
        prune: dict[tuple[str, str], int],
        quality: list[dict[str, Any]],
    ) -> list[Out]:
        results = score_matrix(self.models.current(), X, self.thresholds, self.features.names)
        meta = self.features.row_meta()
        now = time.time()
        scored_at = iso(now)
        outs: list[Out] = []
        scores: dict[str, bytes] = {}
        rows: dict[str, bytes] = {}
        xs = X.tolist()  # once: a numpy row's .tolist() per event costs ~1 us
        # from the record's Kafka timestamp (0 where it has none)
        latencies = [now - rec.timestamp_ms / 1000 if rec.timestamp_ms else 0.0 for rec, _ in fresh]
        for i, (_, tx) in enumerate(fresh):
            res = results[i]
            score = score_record(tx, res, latencies[i], scored_at)
            blob = orjson.dumps(score)
            scores[tx.event_id] = blob
            rows[tx.event_id] = _feature_row(tx, xs[i], res, meta, quality[i])
            outs.append(Out(self.t_scores, tx.card_id.encode(), blob))
            if res["score"] >= self.cfg.fraud_alert_threshold and res["decision"] != "approve":
                outs.append(self._alert(score, now))
        observe_many(SCORE_LATENCY, [s for s in latencies if s > 0])  # one call: see there
        n_alerts = sum(1 for o in outs if o.topic == self.t_alerts)
        live = batch_stats(
            [r["score"] for r in results],
            [r["decision"] for r in results],
            [1000 * s for (rec, _), s in zip(fresh, latencies, strict=True) if rec.timestamp_ms],
            n_alerts,
        )
        self.store.write(
            inc,
            scores,
            rows,
            self.cfg.score_ttl_s,
            self.cfg.label_horizon_s,
            self.spec.per_day,
            WINDOWS_DAYS,
            prune,
            stats={self.names.live(int(now)): live},
        )
        outs += self._kpis(fresh, results)
        EVENTS.labels(topic="transactions", outcome="scored").inc(len(fresh))
        return outs

    def _kpis(
        self, fresh: list[tuple[Record, Transaction]], results: list[dict[str, Any]]
    ) -> list[Out]:
        """Business KPIs as metric series (first-time events only, so replays count once)."""
        alerted = [
            r["score"] >= self.cfg.fraud_alert_threshold and r["decision"] != "approve"
            for r in results
        ]
        # safe_amount: a minute's amount total must not overflow either (Redis refuses inf).
        return self.derived.points(
            (tx.epoch, safe_amount(tx.amount), a) for (_, tx), a in zip(fresh, alerted, strict=True)
        )

    def _replayed(self, tx: Transaction, prev: bytes) -> list[Out]:
        """A re-delivered event's outputs again: its stored score and, if it alerted, its alert.

        A batch is re-delivered when its outputs were not all acknowledged, so they must be
        produced again; the alert's id is the event's, so the dispatcher passes it once.
        """
        outs = [Out(self.t_scores, tx.card_id.encode(), prev)]
        score = orjson.loads(prev)
        if score["score"] >= self.cfg.fraud_alert_threshold and score["decision"] != "approve":
            outs.append(self._alert(score, time.time()))
        return outs

    def _alert(self, score: dict[str, Any], now: float) -> Out:
        body = {
            "alert_id": f"fraud-{score['event_id']}",
            "kind": "fraud",
            "severity": "critical" if score["decision"] == "decline" else "warning",
            "subject": score["card_id"],
            "message": f"transaction {score['event_id']} scored {score['score']:.3f} "
            f"({score['decision']})",
            "details": {k: score[k] for k in ("event_id", "score", "decision", "reasons")},
            "timestamp": iso(now),
        }
        return Out(self.t_alerts, b"fraud", orjson.dumps(body))


def _feature_row(
    tx: Transaction, x: list[float], res: dict[str, Any], meta: dict[str, Any], dq: dict[str, Any]
) -> bytes:
    """The stored feature row of one scored transaction (the monitor's and trainer's input)."""
    return orjson.dumps(
        {
            "event_id": tx.event_id,
            "card_id": tx.card_id,
            "terminal_id": tx.terminal_id,
            "epoch": tx.epoch,
            "x": x,
            **meta,
            "groups": tx.groups,
            "score": res["score"],
            "online_score": res["online_score"],
            "batch_score": res["batch_score"],
            "shadow_score": res["shadow_score"],
            "batch_model": res["model_versions"].get("batch"),
            "decision": res["decision"],
            "dq": dq,
        }
    )
