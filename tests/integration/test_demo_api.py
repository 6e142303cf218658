"""The demo's status through real Valkey and real HTTP: GET /v1/demo, `riverwatch status`, and
the story's order (a retrain request seen before the drift alert waits for it)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from riverwatch.core.settings import Settings
from riverwatch.shell.demostory import DAY, Story
from riverwatch.shell.status import collect, render
from tests.support.apiserver import running_api

pytestmark = pytest.mark.integration
START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def test_demo_status_is_served_announced_and_advanced_in_order(settings: Settings) -> None:
    with running_api(settings) as api:
        off = api.http.get("/v1/demo", headers=api.auth("reader"))
        assert off.status_code == 200 and off.json()["phase"] == "off"
        assert api.http.get("/v1/demo").status_code == 401

        story = Story(settings, api.redis, START)
        story.inject(43, "card testing on 3% of the cards a day")
        got = api.http.get("/v1/demo", headers=api.auth("reader")).json()
        assert got["phase"] == "drift injected" and got["episode"]["event_day"] == 43
        assert "since event day 43: card testing" in got["message"]

        # The monitor's retrain request comes first: the story waits for the drift alert.
        start = START + 43 * DAY
        act = {"action": "retrain", "target": "batch", "request_id": "monitor-retrain-1"}
        act |= {"reason": "ap fell", "window_end": _iso(start + DAY)}
        api.redis.lpush(api.names.monitor("actions"), orjson.dumps(act))
        story.observe(start + DAY)
        assert story.phase == "drift injected"
        calm_alert = {"kind": "drift", "message": "before", "details": {"window_start": _iso(0)}}
        alert = {"kind": "drift", "message": "features drifted: amount"}
        alert["details"] = {"window_start": _iso(start)}
        for a in (calm_alert, alert):
            api.redis.xadd(api.names.alert_stream(), {"alert": orjson.dumps(a)})
        story.observe(start + 2 * DAY)
        assert [s["phase"] for s in story.steps] == ["drift injected", "drift alert", "retrain"]
        got = api.http.get("/v1/demo", headers=api.auth("reader")).json()
        assert got["phase"] == "retrain" and got["event_day"] == 45
        assert "monitor-retrain-1" in got["message"]
        assert story._recovered() is None  # no champion promoted after the injection

        text = render(collect(settings))
        assert "demo               retrain requested by the monitor" in text
        assert "drift episode      injected at" in text and "since event day 43" in text
