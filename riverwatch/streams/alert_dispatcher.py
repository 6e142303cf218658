"""The alert dispatcher: ``alerts`` records -> stored, queued alerts (streams/roles/alerts.py
wires it, with the webhook sender, as the ``alerts`` role).

The dispatcher validates each record (bad -> ``deadletter``), then dedups, applies the
cooldown, stores the alert in the Redis stream (GET /v1/alerts, SSE) and queues it for every
matching webhook subscription, in one atomic Redis step (alerts.store). It never dies on
one record. The queues are drained by streams.webhook_sender.Deliveries.
"""

from __future__ import annotations

import logging

from riverwatch.alerts.rules import Filters, cooldown_for, severity_rank
from riverwatch.alerts.store import AlertStore
from riverwatch.context import Context
from riverwatch.core.errors import InvalidEvent
from riverwatch.core.events import dumps, parse_event
from riverwatch.core.metrics import ALERTS, ALERTS_SUPPRESSED, EVENTS
from riverwatch.core.outputs import Alert
from riverwatch.core.redis import UNAVAILABLE as REDIS_UNAVAILABLE
from riverwatch.streams.records import Out, Record, dead_letter

log = logging.getLogger(__name__)
# Worth waiting out; anything else about one record is that record's problem.
TRANSIENT: tuple[type[BaseException], ...] = (*REDIS_UNAVAILABLE, OSError)


class Dispatcher:
    """Turns a batch of ``alerts`` records into stored, queued alerts plus dead letters."""

    def __init__(self, ctx: Context, store: AlertStore, worker: str):
        self.cfg = ctx.worker_config
        self.store = store
        self.worker = worker
        self.deadletter = ctx.names.topic("deadletter")
        self.cooldowns = ctx.alert_cooldowns

    async def _targets(self) -> list[tuple[str, Filters]]:
        out = []
        for sub in await self.store.all():
            try:
                if sub.status == "active":
                    out.append((sub.id, Filters.from_dict(sub.filters)))
            except ValueError:
                log.error("subscription %s has unusable filters %r; skipped", sub.id, sub.filters)
        return out

    async def handle(self, records: list[Record]) -> list[Out]:
        """Store every valid alert (Redis errors propagate: the caller retries the batch)."""
        targets = await self._targets()  # read per batch: a new subscription applies at once
        outs = []
        for rec in records:
            try:
                alert = parse_event(Alert, rec.value or b"")
                subs = [
                    sid
                    for sid, f in targets
                    if f.matches(alert.kind, alert.severity, alert.subject)
                ]
                outcome, _ = await self.store.record(
                    alert.alert_id,
                    f"{alert.kind}:{alert.subject}",
                    dumps(alert),
                    severity_rank(alert.severity),
                    cooldown_for(alert.kind, self.cfg.alert_cooldown_s, self.cooldowns),
                    self.cfg.alert_dedup_ttl_s,
                    subs,
                )
                if outcome == "stored":
                    ALERTS.labels(alert.kind, alert.severity).inc()
                else:
                    ALERTS_SUPPRESSED.labels(alert.kind, outcome).inc()
            except TRANSIENT:
                raise
            except Exception as exc:  # one bad record (or a bug) must cost that record only
                if not isinstance(exc, InvalidEvent):
                    log.exception("alert at %s/%d/%d failed", rec.topic, rec.partition, rec.offset)
                outs.append(dead_letter(self.deadletter, rec, str(exc), self.worker))
                EVENTS.labels(topic=rec.topic, outcome="deadletter").inc()
        return outs
