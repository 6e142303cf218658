"""What the monitor still owes outlives the monitor (real Valkey): a follow-up retrain due at an
event time, and the estimated windows waiting for their labels. Each test restarts the monitor
(a new runner built from Redis) between the promise and the time it falls due."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from riverwatch.context import Context
from riverwatch.context_parts import redis_config
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.monitors.cbpe import estimate
from riverwatch.monitors.concept.detectors import DriftEvent
from riverwatch.monitors.windows import Window
from riverwatch.streams.monitor.runner import Monitor
from riverwatch.streams.records import Record

pytestmark = pytest.mark.integration
DAY = 86_400.0


def _labels(m: Monitor, events: list[tuple[str, float, float, int]], at: float) -> list[dict]:
    """Store the feature rows of ``events`` (event id, epoch, score, label) as the scorer
    would, then feed their labels (labeled at event time ``at``) to ``m``; the alerts and
    control requests it produced."""
    p = m.r.pipeline(transaction=False)
    for eid, t, score, _ in events:
        row = {"epoch": t, "score": score, "decision": "approve" if score < 0.5 else "review",
               "groups": {}, "x": []}  # fmt: skip
        p.set(m.names.feature_row(eid), orjson.dumps(row))
    p.execute()
    recs = [
        Record(m.names.topic("labels"), 0, i, eid.encode(),
               orjson.dumps({"event_id": eid, "label": y, "timestamp": at}))
        for i, (eid, _, _, y) in enumerate(events)
    ]  # fmt: skip
    return [orjson.loads(o.value) for o in m.process_labels(recs)]


def test_a_restarted_monitor_still_issues_a_due_follow_up_retrain(settings: Settings) -> None:
    r = redis_client(redis_config(settings))
    ctx = Context.from_settings(settings)
    followup = ctx.policy.followup_s
    assert followup > 0  # the label delay plus the trainer's hold-out
    first = Monitor(ctx, r, "w1")
    win = Window("count", -1, 40 * DAY, 41 * DAY, [], [])
    drift = DriftEvent("combined", "*", 1500, 41 * DAY, "up", 0.01, 0.05, "adwin")
    asked = first.policy.concept(win, [drift])
    assert [c.action for c in asked.controls] == ["retrain"]
    first.publish(asked)  # its state, follow-up due included, to Redis

    again = Monitor(Context.from_settings(settings), r, "w2")  # the helper restarted
    assert not again.core.ready  # no champion: its reference is collected again
    due = 41 * DAY + followup
    early = _labels(again, [("e-early", due - DAY, 0.1, 0)], at=due)
    assert [o for o in early if "action" in o] == []  # not yet: events before it is due
    out = _labels(again, [("e-due", due + 60.0, 0.1, 0)], at=due + DAY)
    controls = [o for o in out if "action" in o]
    assert [(c["action"], c["target"]) for c in controls] == [("retrain", "batch")]
    assert controls[0]["details"]["trigger"]["finding"] == "concept_followup"
    assert orjson.loads(r.get(again.names.monitor("policy")) or b"{}")["followup"] is None
    third = Monitor(Context.from_settings(settings), r, "w3")  # once only
    assert [o for o in _labels(third, [("e-late", due + DAY, 0.1, 0)], at=due + 2 * DAY)
            if "action" in o] == []  # fmt: skip
    r.close()


def test_a_restarted_monitor_realises_the_estimates_made_before(settings: Settings) -> None:
    r = redis_client(redis_config(settings))
    first = Monitor(Context.from_settings(settings), r, "w1")
    delay = first.core.c.label_delay_s
    win = Window("time", 10, 10 * DAY, 11 * DAY, [], [])
    est = estimate(np.r_[np.full(40, 0.9), np.full(960, 0.01)], first.core.c.review_threshold)
    first.core.store("estimate", first.core.ledger.add(win, est, None))
    # two flagged frauds and a flagged legitimate event before the restart ...
    before = [("a1", 10.1 * DAY, 0.9, 1), ("a2", 10.2 * DAY, 0.9, 1), ("a3", 10.3 * DAY, 0.9, 0)]
    _labels(first, before, at=12 * DAY)
    stored = orjson.loads(r.get(first.names.monitor("estimate")) or b"{}")
    assert stored["source"] == "estimate"
    assert len(r.hgetall(first.names.monitor("estimates:waiting"))) == 1

    again = Monitor(Context.from_settings(settings), r, "w2")  # the helper restarted
    # ... a missed fraud after it, whose label comes once the window's labels matured
    _labels(again, [("b1", 10.5 * DAY, 0.1, 1)], at=11 * DAY + delay)
    stored = orjson.loads(r.get(again.names.monitor("estimate")) or b"{}")
    assert stored["source"] == "realised", stored
    assert stored["window_start"] == win.meta()["window_start"]
    assert stored["realised"] == {"labeled": 4, "frauds": 3, "flagged": 3,
                                  "precision": 2 / 3, "recall": 2 / 3}  # fmt: skip
    assert r.hgetall(again.names.monitor("estimates:waiting")) == {}  # realised: deleted

    r.hset(first.names.monitor("estimates:waiting"), "time|0.0|1.0", b"{not json")
    fresh = Monitor(Context.from_settings(settings), r, "w3")  # unreadable: dropped
    assert fresh.core.ledger.changes() == ({}, [])
    assert r.hgetall(first.names.monitor("estimates:waiting")) == {}
    r.close()


def test_a_request_decided_but_never_acknowledged_is_sent_by_the_next_monitor(
    settings: Settings,
) -> None:
    r = redis_client(redis_config(settings))
    first = Monitor(Context.from_settings(settings), r, "w1")
    win = Window("count", -1, 40 * DAY, 41 * DAY, [], [])
    drift = DriftEvent("combined", "*", 1500, 41 * DAY, "up", 0.01, 0.05, "adwin")
    outs = first.publish(first.policy.concept(win, [drift]))
    (request,) = [o for o in outs if o.topic == first.names.topic("control")]
    # the helper stops before the broker acknowledged the record: the state already says
    # the retrain was asked for (its cooldown runs), so only the outbox still has it
    policy = orjson.loads(r.get(first.names.monitor("policy")) or b"{}")
    assert ["action:retrain", "batch", 41 * DAY] in policy["last"]

    again = Monitor(Context.from_settings(settings), r, "w2")
    assert again.policy.concept(win, [drift]).controls == []  # cooling down: not decided again
    assert again.unsent() == [request]  # ... but sent again
    again.sent([request])  # the broker acknowledged it
    assert Monitor(Context.from_settings(settings), r, "w3").unsent() == []
    r.close()
