"""Event streams over real HTTP: caps per key and overall, no pooled Redis connection held
while open, and stream tokens (EventSource cannot send the Authorization header)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack
from urllib.parse import urlsplit

import pytest

from riverwatch.core.apikeys import create_key, revoke_key
from riverwatch.core.settings import Settings
from tests.support.apiserver import Api, running_api
from tests.support.workers import poll

pytestmark = pytest.mark.integration

TX = {
    "event_id": "s1",
    "timestamp": 1_700_000_000,
    "card_id": "c1",
    "terminal_id": "t1",
    "amount": 1,
}


def open_stream(api: Api, path: str, key: str | None = None, stack: ExitStack | None = None) -> int:
    """Open an event stream on a raw socket, return its status; the socket stays open on
    ``stack`` (the stream is held) until the stack closes."""
    url = urlsplit(str(api.http.base_url))
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    s = socket.create_connection((url.hostname, url.port), timeout=15)
    if stack is not None:
        stack.callback(s.close)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\n{auth}\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, f"{path}: connection closed before an answer"
        head += chunk
    if stack is None:
        s.close()
    return int(head.split(b" ", 2)[1])


def ingest_and_read_work(api: Api) -> None:
    r = api.http.post("/v1/transactions", json=TX, headers=api.auth("writer"))
    assert r.status_code == 202, r.text
    assert api.http.get("/v1/alerts?limit=5", headers=api.auth("reader")).status_code == 200
    assert api.http.get("/v1/scores/s1", headers=api.auth("reader")).status_code in (200, 404)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with running_api(settings) as running:
        yield running


def test_streams_are_capped_and_ingest_and_reads_go_on_past_the_cap(api: Api) -> None:
    """Finding 2: 100 open streams used up the Redis pool and everything answered 503."""
    s = api.settings
    keys = [create_key(api.redis, api.names, f"watcher{i}", ["read"]) for i in range(21)]
    with ExitStack() as held:
        statuses = [
            open_stream(api, "/v1/alerts/stream", key, held) for key in keys for _ in range(5)
        ]
        ingest_and_read_work(api)
        assert statuses.count(200) == 50 == s.api_max_streams, statuses
        assert set(statuses) == {200, 429}
        over = api.http.get("/v1/alerts/stream", headers={"Authorization": f"Bearer {keys[-1]}"})
        assert over.status_code == 429 and over.headers["retry-after"].isdigit()
        assert "(RIVERWATCH_API_MAX_STREAMS)" in over.json()["detail"]
    # Closed streams give their slots back.
    poll(lambda: open_stream(api, "/v1/alerts/stream", keys[-1]) == 200, 15, "a slot to free up")


def test_a_key_gets_at_most_its_share_of_streams(api: Api) -> None:
    # Alert streams stay open (dashboard streams end after a few seconds); both share the cap.
    with ExitStack() as held:
        for _ in range(api.settings.api_max_streams_per_key):
            assert open_stream(api, "/v1/alerts/stream", api.keys["reader"], held) == 200
        over = api.http.get("/v1/dashboard/stream", headers=api.auth("reader"))
        assert over.status_code == 429 and "PER_KEY" in over.json()["detail"]
        assert over.headers["retry-after"].isdigit()
        assert open_stream(api, "/v1/dashboard/stream", api.keys["root"], held) == 200


def test_open_streams_hold_no_pooled_redis_connection(settings: Settings) -> None:
    small_pool = settings.model_copy(
        update={
            "api_redis_max_connections": 4,
            "api_max_streams": 30,
            "api_max_streams_per_key": 30,
            "alert_sse_poll_s": 0.05,
        }
    )
    with running_api(small_pool) as api, ExitStack() as held:
        for _ in range(12):
            assert open_stream(api, "/v1/alerts/stream", api.keys["reader"], held) == 200
        for _ in range(3):
            ingest_and_read_work(api)


def test_stream_tokens_open_streams_only_and_end_with_their_key(api: Api) -> None:
    """The dashboard's stream no longer sends the key in its URL on every reconnect."""
    assert api.http.post("/v1/stream-tokens").status_code == 401
    assert api.http.post("/v1/stream-tokens", headers=api.auth("writer")).status_code == 403
    key = create_key(api.redis, api.names, "browser", ["read"])
    grant = api.http.post("/v1/stream-tokens", headers={"Authorization": f"Bearer {key}"})
    assert grant.status_code == 200, grant.text
    token = grant.json()["token"]
    assert grant.json()["expires_in"] == api.settings.api_stream_token_ttl_s
    assert token.startswith("st_") and token != key
    for path in ("/v1/dashboard/stream", "/v1/alerts/stream"):
        assert open_stream(api, f"{path}?token={token}") == 200
        assert open_stream(api, f"{path}?token=st_forged") == 401
        assert open_stream(api, f"{path}?key={key}") == 401  # the key never goes in a URL
        assert open_stream(api, path, key) == 200  # Bearer still works
    # A token is no API key: no other route takes it, neither as Bearer nor as ?token=.
    assert (
        api.http.get("/v1/alerts", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    assert api.http.get(f"/v1/alerts?token={token}").status_code == 401
    assert revoke_key(api.redis, api.names, key)
    assert open_stream(api, f"/v1/dashboard/stream?token={token}") == 401


def test_stream_tokens_expire(settings: Settings) -> None:
    short = settings.model_copy(update={"api_stream_token_ttl_s": 5})
    with running_api(short) as api:
        token = api.http.post("/v1/stream-tokens", headers=api.auth("reader")).json()["token"]
        assert open_stream(api, f"/v1/dashboard/stream?token={token}") == 200
        poll(
            lambda: open_stream(api, f"/v1/dashboard/stream?token={token}") == 401,
            15,
            "the stream token to expire",
            every=0.5,
        )
