"""Run the real API over real HTTP (uvicorn in a thread) for integration tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import redis
import uvicorn

from riverwatch.api.main import create_app
from riverwatch.context import Context
from riverwatch.context_parts import redis_config
from riverwatch.core.apikeys import create_key
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """Run create_app(settings) under uvicorn on a free port; yield its base URL."""
    config = uvicorn.Config(
        create_app(Context.from_settings(settings)),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        ws="none",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped during startup (see the log above)"
        assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "uvicorn did not stop within 15 s"


@dataclass
class Api:
    http: httpx.Client
    settings: Settings
    names: Names
    redis: redis.Redis
    keys: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@contextmanager
def running_api(settings: Settings) -> Iterator[Api]:
    names = Names(settings.topic_prefix)
    client = redis_client(redis_config(settings))
    keys = {
        who: create_key(client, names, who, scopes)
        for who, scopes in {"writer": ["ingest"], "reader": ["read"], "root": ["admin"]}.items()
    }
    with serve(settings) as url, httpx.Client(base_url=url, timeout=20) as http:
        yield Api(http, settings, names, client, keys)
    client.close()
