"""Limits before work, over real HTTP: the body limit on every route, auth before the body.

A client that declares a large body and sends only part of it shows whether the server read
the body before answering: a server that waits for the rest never answers (socket timeout).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import orjson
import pytest

from core.settings import Settings
from tests.integration.apiserver import Api, running_api

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
