"""GET /v1/alerts filters, SSE resume with Last-Event-ID, the subscriptions API, 410, digests.

Alerts go through the alerts topic and a real worker; the API runs over real HTTP.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from riverwatch.alerts.signing import verify
from tests.support.alerts import (
    alert,
    alert_env,
    publish,
    receiver,
    settled,
    stats,
    stored,
    subscribe,
)
from tests.support.apiserver import Api, serve
from tests.support.workers import poll

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with alert_env(stack, tmp_path_factory.mktemp("alertsapi")) as api:
        yield api


def sse(lines: Iterator[str], deadline: float) -> Iterator[dict[str, str]]:
    """Parse server-sent events; comments come out as ``{"comment": text}``."""
    event: dict[str, str] = {}
    for line in lines:
        assert time.monotonic() < deadline, "timed out reading the SSE stream"
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line:
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")
        elif event:
            yield event
            event = {}


def next_events(stream: Iterator[dict[str, str]], n: int) -> list[dict[str, str]]:
    return list(itertools.islice((e for e in stream if "data" in e), n))


def test_sse_resumes_after_last_event_id_without_gaps_or_duplicates(env: Api) -> None:
    subj = f"sse-{uuid.uuid4().hex[:6]}"
    ids = [f"{subj}-{i}" for i in range(6)]
    params, auth = {"subject": subj}, env.auth("reader")
    deadline = time.monotonic() + 30
    with env.http.stream("GET", "/v1/alerts/stream", params=params, headers=auth) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse(r.iter_lines(), deadline)
        assert next(events) == {"comment": "connected"}  # live: now publish
        publish(env, *(alert(i, subj, "fraud") for i in ids), key=b"fraud")
        first = next_events(events, 3)
    resume = auth | {"Last-Event-ID": first[-1]["id"]}
    with env.http.stream("GET", "/v1/alerts/stream", params=params, headers=resume) as r:
        events = sse(r.iter_lines(), deadline)
        rest = next_events(events, 3)
        assert next(events) == {"comment": "keep-alive"}  # idle: heartbeats
        publish(env, alert(f"{subj}-end", subj, "fraud"), key=b"fraud")
        after = next_events(events, 1)
    got = first + rest
    assert [orjson.loads(e["data"])["alert_id"] for e in got] == ids
    assert all(e["event"] == "alert" for e in got)
    stream_ids = [tuple(map(int, e["id"].split("-"))) for e in got + after]
    assert stream_ids == sorted(set(stream_ids))  # increasing: no duplicates
    assert orjson.loads(after[0]["data"])["alert_id"] == f"{subj}-end"


def test_alert_history_filters_and_pages(env: Api) -> None:
    p = f"hist-{uuid.uuid4().hex[:6]}"
    spec = [  # (kind, severity, subject suffix, day of January 2026)
        ("drift", "warning", "a", 1),
        ("fairness", "critical", "b", 2),
        ("fraud", "info", "a", 3),
        ("performance", "warning", "c", 4),
        ("system", "critical", "b", 5),
    ]
    values = []
    for i, (kind, sev, suffix, day) in enumerate(spec):
        body = orjson.loads(alert(f"{p}-{i}", f"{p}-{suffix}", kind, sev))
        values.append(orjson.dumps(body | {"timestamp": f"2026-01-0{day}T00:00:00Z"}))
    publish(env, *values)

    def get(**params: Any) -> dict[str, Any]:
        r = env.http.get(
            "/v1/alerts", params={"subject": f"{p}-*", **params}, headers=env.auth("reader")
        )
        assert r.status_code == 200, r.text
        page: dict[str, Any] = r.json()
        return page

    def ids(**params: Any) -> list[int]:
        return [int(a["alert_id"].rsplit("-", 1)[1]) for a in get(**params)["items"]]

    poll(lambda: len(get()["items"]) == 5, 30, "5 alerts in the history")
    assert ids() == [4, 3, 2, 1, 0]  # newest first
    assert ids(kind=["drift", "fraud"]) == [2, 0]
    assert ids(severity="critical") == [4, 1]
    assert ids(min_severity="warning") == [4, 3, 1, 0]
    assert ids(subject=f"{p}-a") == [2, 0]
    assert ids(since="2026-01-02T00:00:00Z", until="2026-01-04T00:00:00Z") == [2, 1]
    assert ids(since="2026-01-05") == [4]  # no zone: UTC
    first = get(limit=2)
    assert [a["severity"] for a in first["items"]] == ["critical", "warning"]
    second = get(limit=2, before=first["next_before"])
    third = get(limit=2, before=second["next_before"])
    assert [len(x["items"]) for x in (first, second, third)] == [2, 2, 1]
    assert third["next_before"] is None
    assert env.http.get("/v1/alerts").status_code == 401
    assert (
        env.http.get("/v1/alerts", params={"kind": "nope"}, headers=env.auth("reader")).status_code
        == 422
    )
    assert (
        env.http.get(
            "/v1/alerts/stream", headers=env.auth("reader") | {"Last-Event-ID": "x"}
        ).status_code
        == 422
    )


def test_subscriptions_refuse_internal_urls_and_never_show_secrets(env: Api) -> None:
    root = env.auth("root")
    refused = {
        "http://10.0.0.1/hook": "private",
        "http://169.254.169.254/latest/meta-data/": "cloud metadata",
        "http://[fd00::1]/hook": "private",
        "ftp://8.8.8.8/hook": "http or https",
    }
    for url, reason in refused.items():
        r = env.http.post("/v1/subscriptions", json={"url": url}, headers=root)
        assert r.status_code == 422 and reason in r.json()["detail"], (url, r.text)
    bad_kind = {"url": "http://127.0.0.1:9/h", "filters": {"kinds": ["nope"]}}
    assert env.http.post("/v1/subscriptions", json=bad_kind, headers=root).status_code == 422
    ok = {"url": "http://127.0.0.1:9/h"}
    assert (
        env.http.post("/v1/subscriptions", json=ok, headers=env.auth("reader")).status_code == 403
    )
    r = env.http.post("/v1/subscriptions", json=ok, headers=root)
    assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
    sub_id = r.json()["id"]
    listed = env.http.get("/v1/subscriptions", headers=root)
    assert sub_id in [s["id"] for s in listed.json()] and "whsec_" not in listed.text
    assert listed.json()[0]["stats"]["pending"] == 0
    assert env.http.delete(f"/v1/subscriptions/{sub_id}", headers=root).status_code == 204
    assert env.http.get(f"/v1/subscriptions/{sub_id}", headers=root).status_code == 404
    assert env.http.delete(f"/v1/subscriptions/{sub_id}", headers=root).status_code == 404
    # Loopback only when RIVERWATCH_WEBHOOK_ALLOW_LOOPBACK is on.
    strict = env.settings.model_copy(update={"webhook_allow_loopback": False})
    with serve(strict) as url:
        for hook in ("http://127.0.0.1:9/h", "http://localhost:9/h", "http://[::1]:9/h"):
            r = httpx.post(f"{url}/v1/subscriptions", json={"url": hook}, headers=root)
            assert r.status_code == 422 and "ALLOW_LOOPBACK" in r.json()["detail"], r.text


def test_410_disables_the_subscription(env: Api) -> None:
    subj = f"gone-{uuid.uuid4().hex[:6]}"
    with receiver(status=410) as rx:
        sub = subscribe(env, rx.url, [subj])
        publish(env, alert(f"{subj}-1", subj, "fraud"), key=b"fraud")
        got = poll(
            lambda: (s := stats(env, sub["id"]))["status"] == "disabled" and s, 30, "disabled"
        )
        assert "410" in got["disabled_reason"] and len(rx.got) == 1
        publish(env, alert(f"{subj}-2", subj, "fraud"), key=b"fraud")
        poll(lambda: stored(env, f"{subj}-2"), 30, "the second alert stored")
        st = stats(env, sub["id"])["stats"]
        assert (st["pending"], st["failed"], len(rx.got)) == (0, 1, 1)


def test_digest_batches_alerts_into_one_signed_post(env: Api) -> None:
    subj = f"digest-{uuid.uuid4().hex[:6]}"
    with receiver() as rx:
        sub = subscribe(env, rx.url, [subj], digest_interval_s=1)
        ids = [f"{subj}-{i}" for i in range(4)]
        publish(env, *(alert(i, subj, "fraud") for i in ids), key=b"fraud")
        poll(lambda: settled(env, sub["id"], 4), 30, "the digest delivered")
        assert len(rx.got) == 1 and [a["alert_id"] for a in rx.alerts()] == ids
        headers, body = rx.got[0]
        verify(sub["secret"], headers, body)
        assert headers["webhook-id"].startswith("digest_")


def test_a_rotated_secret_signs_alongside_the_old_one_during_the_overlap(env: Api) -> None:
    # Issue 13, finding 10: a subscription's secret could not be rotated.
    subj, root = f"rotate-{uuid.uuid4().hex[:6]}", env.auth("root")
    with receiver() as rx:
        sub = subscribe(env, rx.url, [subj])
        old = sub["secret"]
        path = f"/v1/subscriptions/{sub['id']}/rotate-secret"
        assert env.http.post(path, headers=env.auth("reader")).status_code == 403
        assert (
            env.http.post("/v1/subscriptions/sub_nope/rotate-secret", headers=root).status_code
            == 404
        )
        r = env.http.post(path, headers=root)
        assert r.status_code == 200, r.text
        new, until = r.json()["secret"], r.json()["previous_secret_expires_at"]
        assert new.startswith("whsec_") and new != old and until is not None
        assert new not in env.http.get(f"/v1/subscriptions/{sub['id']}", headers=root).text
        publish(env, alert(f"{subj}-1", subj, "fraud"), key=b"fraud")
        poll(lambda: settled(env, sub["id"], 1), 30, "the alert delivered")
        headers, body = rx.got[0]
        assert len(headers["webhook-signature"].split(" ")) == 2
        for secret in (old, new):  # a receiver still on the old secret, or already on the new
            Webhook(secret).verify(body, headers)
        # After the overlap (here none at all) only the newest secret signs.
        r = env.http.post(path, params={"overlap_s": 0}, headers=root)
        newest = r.json()["secret"]
        assert r.json()["previous_secret_expires_at"] is None
        publish(env, alert(f"{subj}-2", subj, "fraud"), key=b"fraud")
        poll(lambda: settled(env, sub["id"], 2), 30, "the second alert delivered")
        headers, body = rx.got[1]
        Webhook(newest).verify(body, headers)
        for secret in (old, new):
            with pytest.raises(WebhookVerificationError):
                Webhook(secret).verify(body, headers)


def test_parked_alerts_are_listed_with_their_reason(env: Api) -> None:
    subj, root = f"parked-{uuid.uuid4().hex[:6]}", env.auth("root")
    with receiver() as rx:
        sub = subscribe(env, rx.url, [subj])
        # Only a hand-written Redis entry can be this broken; the sender parks it and goes on.
        env.redis.xadd(env.names.subscription(sub["id"], "queue"), {"alert": b"\xff not json"})
        publish(env, alert(f"{subj}-1", subj, "fraud"), key=b"fraud")
        poll(lambda: settled(env, sub["id"], 1), 30, "the good alert delivered")
        st = stats(env, sub["id"])["stats"]
        assert st["parked"] == 1 and "not JSON" in st["last_parked_reason"]
        r = env.http.get(f"/v1/subscriptions/{sub['id']}/parked", headers=root)
        assert r.status_code == 200, r.text
        [parked] = r.json()
        assert parked["alert"] == "\ufffd not json" and "not an alert" in parked["reason"]
        assert env.http.get("/v1/subscriptions/sub_nope/parked", headers=root).status_code == 404
        assert (
            env.http.get(f"/v1/subscriptions/{sub['id']}/parked", headers=env.auth("reader"))
        ).status_code == 403
