"""Answers to ``control`` requests, shared by their handlers (the trainer and the learner).

Every request is answered the same way, whoever carries it out: a Control outcome with the
request's ``request_id`` and status ``done`` or ``failed`` on ``control``, and a ``retrain``
alert announcing it on ``alerts``; both counted in ``riverwatch_events_total`` as
``<action>_done`` / ``<action>_failed``.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from riverwatch.core.events import dumps, now_utc
from riverwatch.core.metrics import EVENTS
from riverwatch.core.names import Names
from riverwatch.core.outputs import MESSAGE_MAX_CHARS, Alert, AlertKind, Control
from riverwatch.streams.records import Out

log = logging.getLogger(__name__)


def answer(
    names: Names,
    req: Control,
    ok: bool,
    msg: str,
    details: dict[str, Any],
    target: str | None = None,
) -> list[Out]:
    """The ``control`` outcome and the ``retrain`` alert of a finished request.

    ``target`` is what the outcome is about (the model it produced or changed); the request's
    own target by default. It is also the alert's subject.
    """
    status: Literal["done", "failed"] = "done" if ok else "failed"
    msg = msg[: MESSAGE_MAX_CHARS - 64]  # an exception's text; the alert adds a prefix
    EVENTS.labels(topic="control", outcome=f"{req.action}_{status}").inc()
    (log.info if ok else log.warning)("%s %s: %s", req.action, req.request_id, msg)
    now = now_utc()
    done = Control(
        action=req.action,
        target=target or req.target,
        request_id=req.request_id,
        status=status,
        reason=msg,
        details=details,
        timestamp=now,
    )
    alert = Alert(
        alert_id=f"{req.action}-{req.request_id}",
        kind=AlertKind.RETRAIN,
        severity="info" if ok else "warning",
        subject=done.target,
        message=f"{req.action} {status}: {msg}",
        details={"request_id": req.request_id, "action": req.action, **details},
        timestamp=now,
    )
    return [
        Out(names.topic("control"), req.request_id.encode(), dumps(done)),
        Out(names.topic("alerts"), b"retrain", dumps(alert)),
    ]
