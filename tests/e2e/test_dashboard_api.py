"""The dashboard's endpoints over real HTTP: the page, the summary JSON and the SSE stream."""

from __future__ import annotations

import time

import orjson
import pytest

from riverwatch.core.settings import Settings
from tests.support.apiserver import running_api

pytestmark = pytest.mark.integration


def test_page_and_static_files_need_no_key(settings: Settings) -> None:
    with running_api(settings) as api:
        page = api.http.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert '<script src="/static/app.js"' in page.text
        for path in ("/static/app.js", "/static/style.css"):
            assert api.http.get(path).status_code == 200, path


def test_summary_sums_the_last_seconds(settings: Settings) -> None:
    with running_api(settings) as api:
        api.redis.hset(api.names.learner_stats(), mapping={"learned": 7, "unknown": 1})
        api.redis.set(api.names.model_version("online"), "12")
        assert api.http.get("/v1/dashboard/summary").status_code == 401
        for _attempt in range(3):  # again if the clock's second turns between writes and read
            now = int(time.time())
            seeds = {
                now - 2: {"n": 3, "d:approve": 2, "d:decline": 1, "s:0": 2, "s:9": 1, "lat:1": 3},
                now - 1: {"n": 1, "d:review": 1, "s:5": 1, "lat:4": 1, "alerts": 1},
                now: {"n": 100},  # the current second: left out, it is still being written
            }
            for sec, fields in seeds.items():
                api.redis.hset(api.names.live(sec), mapping=fields)  # type: ignore[arg-type]
            r = api.http.get("/v1/dashboard/summary?window=5", headers=api.auth("reader"))
            assert r.status_code == 200, r.text
            s = r.json()
            if s["now"] == now:
                break
            api.redis.delete(*(api.names.live(sec) for sec in seeds))
        assert s["now"] == now
    live = s["live"]
    assert live["scored"] == 4 and live["scored_per_s"] == pytest.approx(4 / 5)
    assert live["decisions"] == {"approve": 2, "review": 1, "decline": 1}
    assert live["score_histogram"][0] == 2 and live["score_histogram"][9] == 1
    assert live["fraud_alert_rate"] == pytest.approx(0.25)
    assert live["latency_ms"] == {"p50": 10.0, "p99": 100.0}
    assert s["series"]["t"] == list(range(now - 5, now))
    assert s["series"]["scored"] == [0, 0, 0, 3, 1]
    assert s["series"]["p99_ms"] == [None, None, None, 10.0, 100.0]
    assert s["learner"] == {"learned": 7, "unknown": 1}
    assert s["online_model"] == "12"
    assert s["memory"]["redis"] > 0


def test_stream_takes_a_stream_token_from_the_query_for_event_source(settings: Settings) -> None:
    with running_api(settings) as api:
        assert api.http.get("/v1/dashboard/stream").status_code == 401
        assert api.http.get("/v1/dashboard/stream?token=st_wrong").status_code == 401
        root = api.auth("root")
        assert api.http.get("/v1/dashboard/stream?window=0", headers=root).status_code == 422
        grant = api.http.post("/v1/stream-tokens", headers=api.auth("reader"))
        token = grant.json()["token"]
        with api.http.stream("GET", f"/v1/dashboard/stream?window=10&token={token}") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            event, data = None, None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = orjson.loads(line.removeprefix("data: "))
                    break
        assert event == "summary" and data is not None
        assert data["window_s"] == 10 and len(data["series"]["t"]) == 10


def test_stream_ends_by_itself_so_the_server_can_stop(settings: Settings) -> None:
    with running_api(settings) as api:
        t0 = time.monotonic()
        with api.http.stream("GET", "/v1/dashboard/stream", headers=api.auth("reader")) as r:
            events = sum(1 for line in r.iter_lines() if line == "event: summary")
        took = time.monotonic() - t0
    assert 1 <= events <= 10 and took < 15, (events, took)
