"""Limits before work, over real HTTP: the body limit on every route, auth before the body,
capped alert filters run off the event loop, security headers, /docs without a CDN.

A client that declares a large body and sends only part of it shows whether the server read
the body before answering: a server that waits for the rest never answers (socket timeout).
"""

from __future__ import annotations

import re
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import orjson
import pytest

from riverwatch.alerts.rules import Filters
from riverwatch.core.settings import Settings
from tests.support.alerts import alert
from tests.support.apiserver import Api, running_api

pytestmark = pytest.mark.integration

BODY_ROUTES = [
    "/v1/subscriptions",
    "/v1/models/retrain",
    "/v1/models/rollback",
    "/v1/models/m/promote",
]
ANSWER_WITHIN_S = 15.0  # a deadline for the answer, not a speed assertion


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with running_api(settings) as running:
        yield running


def partial_post(api: Api, path: str, declared: int, sent: int, key: str | None = None) -> int:
    """POST declaring ``declared`` body bytes, send ``sent`` of them, return the status.

    Fails when no answer comes while the rest of the body is still owed.
    """
    url = urlsplit(str(api.http.base_url))
    auth = f"Authorization: Bearer {api.keys[key]}\r\n" if key else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
        f"{auth}Content-Length: {declared}\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=ANSWER_WITHIN_S) as s:
        s.sendall(head.encode() + b"[" * sent)
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pytest.fail(f"{path}: no answer while {declared - sent} declared bytes were unsent")
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data.split(b" ", 2)[1])


@pytest.mark.parametrize("path", [*BODY_ROUTES, "/v1/transactions", "/v1/score"])
def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(api: Api, path: str) -> None:
    limit = api.settings.api_max_body_bytes
    assert partial_post(api, path, declared=20 * limit, sent=1024) == 413
    assert partial_post(api, path, declared=20 * limit, sent=1024, key="root") == 413


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_the_key_is_checked_before_the_body_is_read(api: Api, path: str) -> None:
    declared = api.settings.api_max_body_bytes // 2
    assert partial_post(api, path, declared, sent=1024) == 401
    assert partial_post(api, path, declared, sent=1024, key="reader") == 403


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_a_streamed_body_over_the_limit_gets_413_on_every_route(
    settings: Settings, path: str
) -> None:
    small = settings.model_copy(update={"api_max_body_bytes": 4096})
    body = orjson.dumps({"reason": "x" * 10_000})
    with running_api(small) as api:
        r = api.http.post(
            path,
            content=(body[i : i + 512] for i in range(0, len(body), 512)),
            headers=api.auth("root") | {"content-type": "application/json"},
        )
        assert "content-length" not in r.request.headers
        assert r.status_code == 413, r.text
        assert "limit of 4096 bytes" in r.json()["detail"]
        # Under the limit the same route still works (validation, not the limit, answers).
        ok = api.http.post(path, json={"reason": "fine"}, headers=api.auth("root"))
        assert ok.status_code != 413


def store_alert(api: Api, subject: str) -> None:
    api.redis.xadd(api.names.alert_stream(), {"alert": alert(uuid.uuid4().hex, subject)})


def test_alert_filters_are_capped(api: Api) -> None:
    """Finding 6: 1,600 patterns were accepted; now at most
    RIVERWATCH_ALERT_FILTER_MAX_SUBJECTS of RIVERWATCH_ALERT_FILTER_MAX_SUBJECT_LEN characters."""
    MAX_SUBJECTS = api.settings.alert_filter_max_subjects
    MAX_SUBJECT_LEN = api.settings.alert_filter_max_subject_len
    store_alert(api, "cap-a")
    h = api.auth("reader")
    ok = [("subject", f"cap-{i}-{'x' * (MAX_SUBJECT_LEN - 10)}*") for i in range(MAX_SUBJECTS)]
    assert api.http.get("/v1/alerts", params=ok, headers=h).status_code == 200
    assert api.http.get("/v1/alerts", params=[("subject", "cap-a")], headers=h).json()["items"]
    too_many = [("subject", f"cap-{i}*") for i in range(MAX_SUBJECTS + 1)]
    for path in ("/v1/alerts", "/v1/alerts/stream"):
        assert api.http.get(path, params=too_many, headers=h).status_code == 422
        long = [("subject", "x" * (MAX_SUBJECT_LEN + 1))]
        assert api.http.get(path, params=long, headers=h).status_code == 422


def test_alert_filtering_runs_off_the_event_loop(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a filter is busy, /healthz answers: the filter runs in a worker thread.

    The filter is held until /healthz has answered; were it in the event loop, /healthz could
    not answer until it was let go.
    """
    store_alert(api, "busy-a")
    entered, release, threads = threading.Event(), threading.Event(), set()
    matches = Filters.matches

    def held(self: Filters, kind: str, severity: str, subject: str) -> bool:
        threads.add(threading.current_thread().name)
        entered.set()
        release.wait(ANSWER_WITHIN_S * 2)
        return matches(self, kind, severity, subject)

    monkeypatch.setattr(Filters, "matches", held)
    with ThreadPoolExecutor(1) as pool:
        listed = pool.submit(
            api.http.get, "/v1/alerts", params={"subject": "busy-*"}, headers=api.auth("reader")
        )
        try:
            assert entered.wait(ANSWER_WITHIN_S), "the filter never ran"
            health = api.http.get("/healthz", timeout=ANSWER_WITHIN_S)
            assert health.status_code == 200
        finally:
            release.set()
        assert listed.result().status_code == 200
    assert threads and "uvicorn-test" not in threads, threads  # uvicorn-test runs the loop


def test_every_answer_says_nosniff_and_a_permissions_policy(api: Api) -> None:
    answers = [
        api.http.get("/"),
        api.http.get("/static/app.js"),
        api.http.get("/healthz"),
        api.http.get("/v1/alerts"),  # 401
        api.http.get("/v1/alerts", headers=api.auth("reader")),
        api.http.get("/docs"),
    ]
    for r in answers:
        assert r.headers["x-content-type-options"] == "nosniff", r.url
        assert "camera=()" in r.headers["permissions-policy"], r.url
    page = answers[0]
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_docs_load_nothing_from_another_host(api: Api) -> None:
    for path in ("/docs", "/redoc"):
        html = api.http.get(path)
        assert html.status_code == 200
        refs = re.findall(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)""", html.text)
        assert refs, html.text
        for ref in refs:
            assert ref.startswith("/") and not ref.startswith("//"), f"{path} loads {ref}"
            if not ref.endswith("openapi.json"):
                assert api.http.get(ref).status_code == 200, ref
        assert "http://" not in html.text and "https://" not in html.text


def test_docs_can_be_turned_off(settings: Settings) -> None:
    with running_api(settings.model_copy(update={"api_docs": False})) as api:
        assert api.http.get("/docs").status_code == 404
        assert api.http.get("/redoc").status_code == 404
        assert api.http.get("/openapi.json").status_code == 200


def test_alert_filter_caps_are_settings(settings: Settings) -> None:
    """RIVERWATCH_ALERT_FILTER_MAX_SUBJECTS/_MAX_SUBJECT_LEN bound the filters and the OpenAPI."""
    capped = settings.model_copy(
        update={"alert_filter_max_subjects": 3, "alert_filter_max_subject_len": 8}
    )
    with running_api(capped) as api:
        h = api.auth("reader")
        three = [("subject", f"s{i}*") for i in range(3)]
        for path in ("/v1/alerts", "/v1/alerts/stream"):
            over = api.http.get(path, params=[*three, ("subject", "s3")], headers=h)
            assert over.status_code == 422
            assert "RIVERWATCH_ALERT_FILTER_MAX_SUBJECTS" in over.json()["detail"]
            long = api.http.get(path, params=[("subject", "x" * 9)], headers=h)
            assert long.status_code == 422
        assert api.http.get("/v1/alerts", params=three, headers=h).status_code == 200
        doc = api.http.get("/openapi.json").json()
        (subject,) = (
            p for p in doc["paths"]["/v1/alerts"]["get"]["parameters"] if p["name"] == "subject"
        )
        assert subject["schema"]["maxItems"] == 3
        assert subject["schema"]["items"]["maxLength"] == 8


def test_an_alert_stream_ends_after_its_lifetime_and_resumes_where_it_ended(
    settings: Settings,
) -> None:
    """RIVERWATCH_ALERT_SSE_MAX_S ends a stream; its first line set Last-Event-ID to the point
    it started from, so a reconnect gets the alerts stored in between."""
    with running_api(settings.model_copy(update={"alert_sse_max_s": 0.5})) as api:
        h = api.auth("reader")
        store_alert(api, "life-a")
        first = api.http.get("/v1/alerts/stream", headers=h)  # returns: the stream ended
        assert first.status_code == 200
        (start,) = re.findall(r"^id: (\S+)$", first.text, re.MULTILINE)
        newest = api.redis.xrevrange(api.names.alert_stream(), count=1)[0][0].decode()
        assert start == newest  # life-a itself is not replayed
        store_alert(api, "life-b")  # stored while no stream is open
        again = api.http.get("/v1/alerts/stream", headers=h | {"Last-Event-ID": start})
        assert "life-b" in again.text and "life-a" not in again.text


def test_the_openapi_document_describes_every_answer(api: Api) -> None:
    """What schemathesis found on the old document: no 401/403 on the monitor routes, no body
    on /v1/score, no 400 for a body that is not UTF-8, null as a query value, and an Allow
    header naming one of a path's methods."""
    doc = api.http.get("/openapi.json").json()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if op.get("security"):
                assert {"401", "403"} <= set(op["responses"]), (method, path)
            if "requestBody" in op:
                assert {"400", "413"} <= set(op["responses"]), (method, path)
            for param in op.get("parameters", []):
                assert {"type": "null"} not in param["schema"].get("anyOf", []), (path, param)
    assert doc["paths"]["/v1/score"]["post"]["requestBody"]["required"] is True
    not_utf8 = api.http.post(
        "/v1/models/rollback",
        content=b"\xff\xfe",
        headers=api.auth("root") | {"Content-Type": "application/json"},
    )
    assert str(not_utf8.status_code) in doc["paths"]["/v1/models/rollback"]["post"]["responses"]
    options = api.http.request("OPTIONS", "/v1/subscriptions/s1", headers=api.auth("root"))
    assert options.status_code == 405 and options.headers["allow"] == "DELETE, GET"
