"""The trainer: ``control`` requests to retrain, promote or roll back the batch model, and
to reset the online model (handed to the learner). streams/roles/training.py wires it as the
``training`` role.

The ``control`` topic has one partition, so one worker of the group owns the trainer. Only
records with ``status == "requested"`` and action retrain / promote / rollback / reset are
handled: the topic also carries the outcomes published here and by the learner, and the
API's audit records, which are left alone. A record that is not a valid Control goes to
``deadletter``.

A ``reset`` of the online model is not carried out here: the online model has one writer,
the learner (owner of the ``labels`` partition, maybe on another worker), and a second
writer would race it. The trainer records the request in Redis (``Names.learner_reset``)
and the learner picks it up, resets the model and answers (see streams/learning.py). A reset
of any other target fails at once, saying which targets can be reset.

Each request is answered on ``control`` with the same ``request_id`` and status ``done`` or
``failed`` (details say what happened), and announced by a ``retrain`` alert. Training is
CPU-heavy, so it runs in its own thread while the agent keeps consuming (and its read and fit in
a child process, streams/fit.py); one retrain runs at
a time, and a client's retrain requested meanwhile fails at once, saying which one is
running (the monitor's waits). Every request is kept in Redis until its outcome is out, and
resumed by the next owner of ``control`` (a running retrain starts again); a ``request_id``
already pending or answered is not carried out twice, an answered one gets its stored outcome
again (streams/retrains.py, streams/control_pending.py). A request is carried out under
its lease, whose token fences every registry change made for it: a worker that lost the lease
changes nothing and answers nothing (streams/control_lease.py).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import redis

from riverwatch.context import Context
from riverwatch.core.errors import InvalidEvent, RiverwatchError
from riverwatch.core.events import now_utc, parse_event
from riverwatch.core.metrics import EVENTS
from riverwatch.core.outputs import Control
from riverwatch.models.promotion import bounded, windows
from riverwatch.models.serving import ONLINE
from riverwatch.stores.offline import OfflineStore
from riverwatch.stores.registry import Registry
from riverwatch.streams.control import answer
from riverwatch.streams.control_lease import Lease
from riverwatch.streams.control_pending import Pending
from riverwatch.streams.fit import Champion, FitChild, FitJob, Fitted, Progress, fit
from riverwatch.streams.records import Out, Record, dead_letter

log = logging.getLogger(__name__)
ACTIONS = ("retrain", "promote", "rollback", "reset")
RESETTABLE = (ONLINE,)  # the online models a learner owns
SCHEDULE_CHECK_S = 10.0  # how often each worker looks whether a scheduled retrain is due


def _json_safe(value: Any) -> Any:
    # Undefined metrics are NaN, which JSON cannot carry: send null.
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def retrain(
    ctx: Context,
    registry: Registry,
    store: OfflineStore,
    now: float | None = None,
    progress: Callable[[str], None] = lambda _: None,
    fitter: Callable[[FitJob, Progress], Fitted] = fit,
) -> tuple[bool, str, dict[str, Any]]:
    """Train a challenger from the offline store, register it, promote it if it wins.

    ``now`` (event time) defaults to the newest stored row plus the label delay: rows reach
    the store when their label arrives, about one delay after the transaction. Returns
    (ok, message, details); ok is False when no challenger could be registered.
    ``progress`` hears each step (the CLI prints them). ``fitter`` reads the rows and trains:
    in this process by default, in a child process in the worker (streams/fit.py says why).
    """
    cfg = ctx.training
    if now is None:
        latest = store.latest_epoch()
        if latest is None:
            return False, "the offline store has no labeled rows yet", {}
        now = latest + cfg.delay_days * 86_400
    # Bounded before any row is read (RIVERWATCH_TRAIN_MAX_ROWS, from the files' footers):
    # the whole window in memory grows with the traffic (~550 bytes a row; 28 days at 2,000
    # tx/s would be 4.8 billion rows), and an out-of-memory helper takes the monitor, the
    # alerts and the forecasts down with the retrain.
    full = windows(now, cfg)
    w, cut = bounded(full, store.day_rows(full.train_start, full.holdout_end), cfg.max_rows)
    if w is None:
        return False, f"{cut}; no row read", {"now": now, "windows": asdict(full)}
    if cut:
        progress(cut)
    progress(f"reading labeled rows: {w.describe()}")
    champion = registry.champion()
    against = None
    if champion is not None:
        against = Champion(champion.name, registry.artifact(champion.name), champion.sha256)
    job = FitJob(store.data_dir, ctx.features, now, cfg, w, against)
    fitted = fitter(job, progress)
    result, note = fitted.result, fitted.note
    details: dict[str, Any] = {"now": now, **result.summary()}
    if cut:
        details["bounded"] = cut
    details["fit"] = fitted.stats
    details["champion_name"] = champion.name if champion else None
    if not result.evaluated:
        return False, result.reason + note, _json_safe(details)
    assert result.challenger is not None and result.challenger_metrics is not None
    version = registry.register(
        result.challenger,
        data_window=(w.train_start, w.train_end),
        holdout_window=(w.holdout_start, w.holdout_end),
        metrics=result.challenger_metrics,
        features=result.features,
        info={
            **result.counts,
            **result.challenger.describe(),
            "blend_weight": result.blend_weight,
            "promote": result.promote,  # the verdict, for a retrain resumed after this
        },
        reason=result.reason,
    )
    details["challenger_name"] = version.name
    progress(f"registered {version.name}")
    if result.promote:
        registry.promote(version.name, reason=result.reason)
    details["promoted"] = result.promote
    verdict = "promoted to champion" if result.promote else "kept as challenger"
    return True, f"{version.name} {verdict}: {result.reason}{note}", _json_safe(details)


class Trainer:
    """Turns one control request into its outcome, alert and (maybe) a new champion."""

    def __init__(self, ctx: Context, client: redis.Redis, worker: str):
        self.ctx = ctx
        self.cfg = ctx.worker_config
        self.names = ctx.names
        self.r = client
        self.pending = Pending(client, ctx.names)
        self.store = ctx.offline(f"trainer-{worker}")
        self.worker = worker

    def lease(self, request_id: str) -> Lease:
        """A fresh lease on ``request_id`` for this worker (not taken yet)."""
        return Lease(self.r, self.ctx, request_id, self.worker)

    def scheduled(self) -> tuple[Control, Lease] | None:
        """The retrain due on the schedule (``retrain_every_days``), or None.

        Due once per period of event time: ``now`` is the newest labeled row plus the label
        delay (as :func:`retrain` defaults), its period ``now // every``. The first worker to
        claim a period in Redis retrains it; the others see the claim and skip it. The claim,
        the request's pending entry and its lease (returned, held) are written in one script
        (:meth:`Pending.claim` says why a crash can neither lose nor repeat the period).
        """
        every = self.cfg.retrain_every_days
        if every <= 0:
            return None
        latest = self.store.latest_epoch()
        if latest is None:
            return None
        now = latest + self.ctx.spec.label_delay_days * 86_400
        period = int(now // (every * 86_400))
        claim = self.names.registry(f"scheduled:{period}")
        ttl = max(1, int(3 * every * 86_400))
        req = Control(
            action="retrain",
            target="batch",
            request_id=f"scheduled-{period}",
            reason=f"scheduled: every {every:g} event days of matured labels",
            details={"now": now},
            timestamp=now_utc(),
        )
        lease = self.lease(req.request_id)
        return (req, lease) if self.pending.claim(claim, ttl, req, lease) else None

    def parse(self, rec: Record) -> Control | Out | None:
        """The request in ``rec``; a dead letter if it is not a Control; None if not ours."""
        try:
            req = parse_event(Control, rec.value or b"")
        except InvalidEvent as exc:
            return dead_letter(self.names.topic("deadletter"), rec, str(exc), self.worker)
        if req.action == "reset" and req.status != "requested":
            return req  # the learner's answer to a reset: stored for a redelivered request
        if req.status != "requested" or req.action not in ACTIONS:
            return None
        return req

    def handle(self, req: Control, lease: Lease) -> list[Out]:
        """Carry out ``req`` under ``lease`` (held; blocking: a retrain takes seconds to
        minutes). Raises LeaseLost, having changed nothing, if the lease is lost; a retrain checks
        its lease between steps and every second while its child process fits, so one whose
        worker stopped ends at its next check (the child killed).

        A valid ``reset`` is only recorded for the learner, which answers it: nothing is
        returned for it here.
        """
        if req.action == "reset":
            return self.hand_over_reset(req)
        registry = lease.registry()  # every change fenced by the lease
        try:
            if req.action == "retrain":
                ok, msg, details = self.retrain(req, lease, registry)
            else:
                ok, msg, details = self.change(req, lease, registry)
        except RiverwatchError as exc:  # unknown model, nothing to roll back, bad artifact
            ok, msg, details = False, str(exc), {}
        return self.outcome(req, ok, msg, details)

    def retrain(self, req: Control, lease: Lease, registry: Registry) -> tuple[bool, str, dict]:
        """Train, register and maybe promote, once: a challenger already registered for this
        request (by a worker that stopped, or lost its lease, before its outcome was out) is
        finished with the verdict it was registered with, not trained and registered again."""
        applied = lease.applied()
        if applied is None:
            now = req.details.get("now")
            at = float(now) if now is not None else None
            return retrain(
                self.ctx,
                registry,
                self.store,
                at,
                progress=lambda _: lease.ensure(),
                fitter=lambda job, _: FitChild(job).run(check=lease.ensure),
            )
        name = str(applied["name"])
        promoted = applied["action"] == "promote"
        if not promoted and registry.get(name).info.get("promote"):
            registry.promote(name, reason=str(applied.get("reason", "")))
            promoted = True
        verdict = "promoted to champion" if promoted else "kept as challenger"
        msg = f"{name} {verdict} (registered by an earlier attempt at this request)"
        return True, msg, {"challenger_name": name, "promoted": promoted, "resumed": True}

    def change(self, req: Control, lease: Lease, registry: Registry) -> tuple[bool, str, dict]:
        """Promote or roll back, once: a change already applied for this request (by a worker
        that died before its outcome was out) is answered, not made again."""
        applied = lease.applied()
        if applied is not None:
            name = str(applied["name"])
        elif req.action == "promote":
            name = registry.promote(req.target, reason=req.reason or "requested").name
        else:
            name = registry.rollback(reason=req.reason or "requested").name
        msg = (
            f"{name} promoted to champion" if req.action == "promote" else f"rolled back to {name}"
        )
        return True, msg, {"champion": name}

    def hand_over_reset(self, req: Control) -> list[Out]:
        """Record a reset of the online model for the learner; fail one of another target."""
        if req.target not in RESETTABLE:
            msg = (
                f"cannot reset {req.target!r}: only the online model can be reset "
                f"(targets: {', '.join(RESETTABLE)}); retrain or roll back a batch model"
            )
            return self.outcome(req, False, msg, {"resettable": list(RESETTABLE)})
        # Keyed by request_id: a request redelivered while still pending is answered once;
        # marked seen with it, so never handed over again once the learner took it.
        self.pending.hand_over(req)
        EVENTS.labels(topic="control", outcome="reset_requested").inc()
        log.info("reset %s of %s handed to the learner", req.request_id, req.target)
        return []

    def outcome(self, req: Control, ok: bool, msg: str, details: dict[str, Any]) -> list[Out]:
        """The ``control`` outcome and the ``retrain`` alert of a finished request."""
        target = details.get("challenger_name") or details.get("champion") or req.target
        return answer(self.names, req, ok, msg, details, target)
