"""The monitor's processing: score and label micro-batches -> windows -> statistics -> policy.

Everything here is synchronous and runs in the monitor's single thread (streams.monitor), so
its state (windows, detectors, reference, policy) needs no lock and Evidently's half second
per window never blocks the event loop. Results go to Redis (latest and a bounded history
under ``Names.monitor``) and Prometheus; the policy's alerts and control requests come back
as :class:`Out` records for the caller to produce.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import orjson
import pandas as pd
import redis

from core.events import Score, dumps
from core.limits import EventLimits
from core.metrics import (
    DRIFT_SHARE,
    EVENTS,
    FAIRNESS_DIFFERENCE,
    GROUP_VALUES_POOLED,
    PERFORMANCE,
    PREDICTION_PSI,
)
from core.names import Names
from core.registry import Registry
from core.settings import Settings
from models.features import FeatureSet
from monitors.concept import ConceptDriftMonitor, make_detector
from monitors.drift import DataDriftMonitor, ScoreDriftMonitor
from monitors.fairness import FairnessCounts
from monitors.performance import performance
from monitors.policy import Decision, Policy
from monitors.windows import CountWindows, TimeWindows, Window
from streams.monitor_data import drift_columns, feature_frame, policy_config, score_array
from streams.offline import OfflineStore
from streams.records import Out, Record, dead_letters, parse_batch, parse_labels

log = logging.getLogger(__name__)
MIN_REFERENCE_ROWS = 200  # fewer labeled rows of the champion's window: not a reference
MODELS = (("combined", "score"), ("online", "online_score"), ("batch", "batch_score"))


class Monitor:
    """Windows over scored and labeled events, their statistics, and the policy."""

    def __init__(self, settings: Settings, client: redis.Redis, worker: str):
        self.s = settings
        self.r = client
        self.worker = worker
        self.names = Names(settings.topic_prefix)
        self.registry = Registry(client, self.names, settings.data_dir)
        self.fs = FeatureSet.parse(settings.feature_attributes)
        self.offline = OfflineStore(
            settings.data_dir, writer=f"monitor-{worker}", feature_set=self.fs
        )
        self.t_dead = self.names.topic("deadletter")
        self.windows: list[CountWindows[Any] | TimeWindows[Any]] = []
        if settings.monitor_window_size:
            self.windows.append(CountWindows(settings.monitor_window_size))
        if settings.monitor_window_s:
            self.windows.append(TimeWindows(settings.monitor_window_s))
        self.labeled: CountWindows[tuple[dict[str, Any], int]] = CountWindows(
            settings.monitor_label_window
        )
        self.concept = ConceptDriftMonitor(
            make_detector(settings.monitor_detector),
            min_abs=settings.monitor_concept_min_abs,
            min_rel=settings.monitor_concept_min_rel,
            min_count=settings.monitor_concept_min_labels,
            max_groups=settings.monitor_max_group_values,
        )
        self.policy = Policy(policy_config(settings))
        self._policy_saved: bytes | None = None
        self._restore_policy()
        self.ref: DataDriftMonitor | None = None
        self.score_ref: ScoreDriftMonitor | None = None
        self.ref_info: dict[str, Any] = {}
        self.ref_token: str | None = None
        self.champion: str | None = None
        self.as_of = -math.inf  # the latest event time seen: label maturity is judged at it
        self.online_resets: int | None = None  # the learner's reset count seen last

    # -- scores ----------------------------------------------------------------------------
    def process_scores(self, records: list[Record]) -> list[Out]:
        """Window a batch of ``scores`` records (joined to their feature rows)."""
        parsed, bad = parse_batch(Score, records)
        outs = dead_letters(self.t_dead, bad, self.worker)
        eids = [score.event_id for _, score in parsed]
        EVENTS.labels(topic="scores", outcome="deadletter").inc(len(outs))
        rows = self._rows(eids)
        EVENTS.labels(topic="scores", outcome="monitored").inc(len(rows))
        self.r.hincrby(self.names.monitor("stats"), "scores", len(records))
        for row in rows.values():
            t = float(row["epoch"])
            self.as_of = max(self.as_of, t)
            for w in self.windows:
                for win in w.add(row, t):
                    outs += self.drift_window(win)
        return outs

    def _rows(self, eids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored feature rows of ``eids`` (one MGET); missing or expired ones skipped."""
        if not eids:
            return {}
        raw = self.r.mget([self.names.feature_row(e) for e in eids])
        return {e: orjson.loads(v) for e, v in zip(eids, raw, strict=True) if v is not None}

    def _reference(self, win: Window[dict[str, Any]]) -> None:
        """(Re)build the reference when the champion changed: its training window's rows in
        the offline store, else (no champion, or too few rows) the first closed window."""
        token = self.registry.stage_token()
        if token == self.ref_token and self.ref is not None:
            return
        self.ref_token = token
        champ = self.registry.champion()
        df = pd.DataFrame()
        if champ is not None:
            df = self.offline.read(champ.data_start, champ.data_end)
        if len(df) >= MIN_REFERENCE_ROWS:
            scores, src = df["score"].to_numpy(dtype=float), f"champion {champ.name}"  # type: ignore[union-attr]
            df = df[list(self.fs.names)]
        elif self.ref is None:
            df, scores = feature_frame(win.events, self.fs.names), score_array(win.events)
            src = "first window"
        else:
            return  # keep the reference we have
        self.ref = DataDriftMonitor(
            df, columns=drift_columns(self.s), max_rows=self.s.monitor_reference_rows
        )
        finite = scores[np.isfinite(scores)]
        self.score_ref = ScoreDriftMonitor(finite) if len(finite) else None
        self.ref_info = {"source": src, "rows": len(df), **win.meta()}
        log.info("monitor reference: %s (%d rows)", src, len(df))

    def drift_window(self, win: Window[dict[str, Any]]) -> list[Out]:
        """Data and prediction drift of one closed window, stored, exported and judged."""
        self._reference(win)
        assert self.ref is not None
        data = self.ref.compare(feature_frame(win.events, self.fs.names))
        pred = self.score_ref.compare(score_array(win.events)) if self.score_ref else None
        result = {
            **win.meta(),
            "data": data.to_dict(),
            "prediction": pred.to_dict() if pred else None,
            "reference": self.ref_info,
        }
        self._store("drift", result)
        DRIFT_SHARE.set(data.share_drifted)
        if pred is not None and not math.isnan(pred.psi):
            PREDICTION_PSI.set(pred.psi)
        drifted = [c.column for c in data.columns if c.drifted]
        psi, psi_drifted = (pred.psi, pred.drifted) if pred else (None, False)
        return self.publish(self.policy.drift(win, data.share_drifted, drifted, psi, psi_drifted))

    # -- labels ----------------------------------------------------------------------------
    def process_labels(self, records: list[Record]) -> list[Out]:
        """Join labels to their rows: concept drift per label, fairness/performance per window."""
        outs: list[Out] = []
        # the learner dead-letters the bad ones
        labels, bad = parse_labels(records, EventLimits.from_settings(self.s))
        EVENTS.labels(topic="labels", outcome="monitor_skipped").inc(len(bad))
        self._follow_resets()
        fresh = self._first_seen(list(labels))  # redelivered labels are not counted twice
        rows = self._rows(fresh)
        events, times = [], []
        for eid, row in rows.items():
            lab = labels[eid]
            t = float(row["epoch"])
            self.as_of = max(self.as_of, lab.epoch)
            times.append(t)
            events += self._errors(row, lab.label, t)
            for win in self.labeled.add((row, lab.label), t):
                outs += self.labeled_window(win)
        if events:
            span: Window[Any] = Window("count", -1, min(times), max(times), [], times)
            self._store(
                "concept",
                {
                    "events": [e.to_dict() for e in events],
                    "detectors": self.concept.report(),
                    **span.meta(),
                },
            )
            outs += self.publish(self.policy.concept(span, events))
        return outs

    def _follow_resets(self) -> None:
        """A reset online model starts a new error stream: its old detectors would keep
        reporting the drift that caused the reset (one HGET per batch)."""
        resets = int(self.r.hget(self.names.learner_stats(), "resets") or 0)
        if self.online_resets is not None and resets != self.online_resets:
            self.concept.reset("online")
            log.info("online model reset: its concept-drift detectors start afresh")
        self.online_resets = resets

    def _first_seen(self, eids: list[str]) -> list[str]:
        if not eids:
            return []
        p = self.r.pipeline(transaction=False)
        for e in eids:
            p.set(self.names.monitor(f"seen:{e}"), b"1", nx=True, ex=self.s.label_horizon_s)
        p.hincrby(self.names.monitor("stats"), "labels", len(eids))  # tests and ops poll it
        return [e for e, new in zip(eids, p.execute()[:-1], strict=True) if new]

    def _errors(self, row: dict[str, Any], label: int, t: float) -> list[Any]:
        """Feed each model's 0/1 error (flagged at the review threshold vs the label)."""
        found = []
        for model, key in MODELS:
            score = row.get(key)
            if model == "combined":
                flagged = row.get("decision") != "approve"
            elif score is None:
                continue
            else:
                flagged = float(score) >= self.s.review_threshold
            dropped = self.concept.dropped
            found += self.concept.update(model, float(flagged != bool(label)), row.get("groups"), t)
            if self.concept.dropped > dropped:
                GROUP_VALUES_POOLED.labels("concept").inc(self.concept.dropped - dropped)
        return found

    def labeled_window(self, win: Window[tuple[dict[str, Any], int]]) -> list[Out]:
        """Fairness and performance of one window of labeled events."""
        rows = [r for r, _ in win.events]
        y = [lab for _, lab in win.events]
        fc = FairnessCounts(max_groups=self.s.monitor_max_group_values)
        fc.update_many(
            (r.get("groups") or {} for r in rows), y, (r["decision"] != "approve" for r in rows)
        )
        if fc.pooled:
            GROUP_VALUES_POOLED.labels("fairness").inc(fc.pooled)
        fair = fc.report(
            n_boot=1000,
            confidence=self.s.monitor_fairness_confidence,
            tolerance=self.s.monitor_fairness_tolerance,
        )
        self._store(
            "fairness", {**win.meta(), "attributes": {a: f.to_dict() for a, f in fair.items()}}
        )
        for attr, f in fair.items():
            for metric in ("demographic_parity_difference", "equalized_odds_difference"):
                FAIRNESS_DIFFERENCE.labels(attr, metric).set(getattr(f, metric))
        decision = self.policy.fairness(win, fair)
        champ = self.registry.champion()
        name = champ.name if champ else None
        if name != self.champion:  # a new batch model: its error stream starts afresh
            self.concept.reset("batch")
            self.concept.reset("combined")
            self.champion = name
        reports = {}
        for model, key in MODELS:
            sel = rows, y
            if model == "batch":
                # Judge the champion on the events it scored itself: just after a promotion
                # the window still holds its predecessor's scores (a rollback must not be
                # decided on them). Fewer than half the window: not judged yet.
                mine = [i for i, r in enumerate(rows) if r.get("batch_model") == name]
                if name is None or 2 * len(mine) < len(rows):
                    continue
                sel = [rows[i] for i in mine], [y[i] for i in mine]
            scores = [r.get(key) for r in sel[0]]
            if all(v is None for v in scores):
                continue
            rep = performance(
                [float(r["epoch"]) for r in sel[0]],
                [math.nan if v is None else v for v in scores],
                sel[1],
                [r.get("card_id", "") for r in sel[0]],
                as_of=self.as_of,
                horizon_s=self.s.label_delay_s,
                threshold=self.s.review_threshold,
                k=100,
                confidence=self.s.monitor_perf_confidence,
            )
            reports[model] = rep.to_dict()
            for metric in ("auc", "ap", "card_precision", "precision", "recall", "maturity"):
                v = reports[model][metric]
                if v is not None:
                    PERFORMANCE.labels(model, metric).set(v)
            decision.extend(
                self.policy.perf(
                    win,
                    model,
                    reports[model],
                    provisional=rep.provisional,
                    champion=name if model == "batch" else None,
                )
            )
        self._store(
            "performance", {**win.meta(), "as_of": self.as_of, "champion": name, "models": reports}
        )
        return self.publish(decision)

    # -- output ----------------------------------------------------------------------------
    def _store(self, kind: str, result: dict[str, Any]) -> None:
        blob = orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY)  # NaN -> null
        p = self.r.pipeline(transaction=False)
        p.set(self.names.monitor(kind), blob)
        p.lpush(self.names.monitor(f"{kind}:history"), blob)
        p.ltrim(self.names.monitor(f"{kind}:history"), 0, self.s.monitor_history - 1)
        p.execute()

    def _restore_policy(self) -> None:
        """Cooldowns, baselines and drift streaks of the monitor that ran before this one.

        One key for the deployment: the monitor runs in one helper process (see README); with
        several, the last to decide wins.
        """
        raw = self.r.get(self.names.monitor("policy"))
        if raw is None:
            return
        try:
            self.policy.restore(orjson.loads(raw))
        except (ValueError, KeyError, TypeError, IndexError):
            log.exception("monitor policy state unreadable: starting afresh")
            return
        self._policy_saved = orjson.dumps(self.policy.state())
        log.info("monitor policy state restored (cooldowns, baselines, drift streaks)")

    def publish(self, decision: Decision) -> list[Out]:
        """The decision's alerts and control requests as records; its audit and the policy's
        state to Redis."""
        p = self.r.pipeline(transaction=False)
        if decision.audit:
            key = self.names.monitor("actions")
            p.lpush(key, *[orjson.dumps(a) for a in decision.audit])
            p.ltrim(key, 0, self.policy.c.audit_max - 1)
        state = orjson.dumps(self.policy.state())
        if state != self._policy_saved:  # most windows change nothing the policy remembers
            p.set(self.names.monitor("policy"), state)
            self._policy_saved = state
        p.execute()
        t_alerts, t_control = self.names.topic("alerts"), self.names.topic("control")
        outs = [Out(t_alerts, a.kind.encode(), dumps(a)) for a in decision.alerts]
        outs += [Out(t_control, c.request_id.encode(), dumps(c)) for c in decision.controls]
        return outs
