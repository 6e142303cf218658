"""Issue 13, finding 5: the webhook sender never dies on one alert.

The real sender (streams.webhook_sender.Deliveries) runs in this process against the session's real
Valkey and POSTs to a real receiver on loopback; alerts go into its queue through the same
AlertStore call the dispatcher uses (or raw, for what only a write to Redis could put there).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook

from riverwatch.alerts.signing import new_secret
from riverwatch.alerts.store import AlertStore
from riverwatch.alerts.subscription import Subscription
from riverwatch.context_parts import redis_config, webhook_config
from riverwatch.core.names import Names
from riverwatch.core.redis import async_redis_client
from riverwatch.core.settings import Settings
from riverwatch.streams.webhook_sender import Deliveries
from tests.support.alerts import alert, receiver
from tests.support.apiserver import running_api

pytestmark = pytest.mark.integration
SAFE_ID = re.compile(r"msg_[0-9a-f]{32}")


@pytest.fixture
def s(stack: Any, tmp_path: Path) -> Settings:
    """Redis-only settings (the sender needs no broker): a fresh prefix, short retries."""
    return Settings(
        kafka_bootstrap=getattr(stack, "ext_bootstrap", None) or stack.bootstrap,
        redis_url=getattr(stack, "ext_redis", None) or stack.redis_url,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}-",
        data_dir=tmp_path / "data",
        webhook_allow_loopback=True,
        webhook_backoff_base_s=0.05,
        webhook_backoff_max_s=0.3,
    )


@asynccontextmanager
async def sender(settings: Settings) -> AsyncIterator[AlertStore]:
    """The real webhook sender running on this loop; yields its store."""
    redis = async_redis_client(redis_config(settings))
    store = AlertStore(redis, Names(settings.topic_prefix))
    deliveries = Deliveries(webhook_config(settings), store, f"test-{uuid.uuid4().hex[:6]}")
    task = asyncio.create_task(deliveries.run())
    try:
        yield store
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await deliveries.stop()
        await redis.aclose()


async def until(cond: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    """Await ``cond`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := await cond():
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


async def subscribe(store: AlertStore, url: str) -> Subscription:
    sub = Subscription(
        f"sub_{uuid.uuid4().hex[:16]}", url, {}, None, new_secret(), "2026-01-01T00:00:00+00:00"
    )
    await store.add(sub)
    return sub


async def queue(store: AlertStore, sub: Subscription, alert_id: str) -> None:
    """Store and queue an alert exactly as the dispatcher does."""
    body = alert(alert_id, f"subj-{alert_id}")
    await store.record(alert_id, f"k:{alert_id}", body, 1, 0, 600, [sub.id])


def parked_metric() -> float:
    value = REGISTRY.get_sample_value("riverwatch_webhook_deliveries_total", {"outcome": "parked"})
    return value or 0.0


def test_ids_with_non_ascii_or_control_characters_are_delivered_under_a_safe_id(
    s: Settings,
) -> None:
    # café.requests once killed the sender (UnicodeEncodeError in the header) every 0.5 s;
    # CR, LF and NUL made every POST fail and stalled the queue behind them.
    ids = ["café.requests-1", "cr\rlf\n-2", "nul\x00-3", "日本-4", "plain-5", "plain-5-again"]
    with receiver() as rx:

        async def main() -> Subscription:
            async with sender(s) as store:
                sub = await subscribe(store, rx.url)
                for alert_id in ids:
                    await queue(store, sub, alert_id)

                async def settled() -> bool:
                    st = await store.stats(sub.id)
                    return st["delivered"] == len(ids) and st["pending"] == 0

                await until(settled, 20, "every alert delivered")
                return sub

        sub = asyncio.run(main())
        assert [a["alert_id"] for a in rx.alerts()] == ids
        hook_ids = [headers["webhook-id"] for headers, _ in rx.got]
        assert all(SAFE_ID.fullmatch(h) for h in hook_ids), hook_ids
        assert len(set(hook_ids)) == len(ids)
        for headers, body in rx.got:  # what a receiver with the official library sees
            Webhook(sub.secret).verify(body, headers)


def test_an_alert_that_cannot_be_sent_is_parked_with_its_reason_and_the_rest_go_on(
    s: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    before = parked_metric()
    with receiver() as rx:

        async def main() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            async with sender(s) as store:
                sub = await subscribe(store, rx.url)
                await queue(store, sub, "first")
                q = store.n.subscription(sub.id, "queue")
                # Only a hand-written Redis entry can look like this: the dispatcher
                # validates every alert. The sender must still not stall on it.
                await store.r.xadd(q, {"alert": b"not json"})
                await store.r.xadd(q, {"alert": b'{"kind": "drift"}'})
                await queue(store, sub, "last")

                async def settled() -> dict[str, Any] | None:
                    st = await store.stats(sub.id)
                    done = (st["delivered"], st.get("parked"), st["pending"]) == (2, 2, 0)
                    return st if done else None

                st = await until(settled, 20, "2 delivered and 2 parked")
                return st, await store.parked(sub.id)

        with caplog.at_level(logging.WARNING, logger="riverwatch.streams.webhook_sender"):
            st, parked = asyncio.run(main())
    assert [a["alert_id"] for a in rx.alerts()] == ["first", "last"]
    assert st["failed"] == 0
    assert [p["alert"] for p in parked] == [b"not json", b'{"kind": "drift"}']
    assert all("not an alert" in p["reason"] for p in parked), parked
    assert parked_metric() - before == 2
    assert sum("parked" in r.getMessage() for r in caplog.records) == 2


def test_a_request_that_cannot_be_built_is_parked_and_the_sender_lives_on(s: Settings) -> None:
    # A secret that is not base64 (written to Redis by hand): signing raises ValueError.
    with receiver() as rx:

        async def main() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            async with sender(s) as store:
                sub = await subscribe(store, rx.url)
                await store.add(dataclasses.replace(sub, secret="whsec_not base64!"))
                for alert_id in ("a-1", "a-2"):
                    await queue(store, sub, alert_id)

                async def parked() -> dict[str, Any] | None:
                    st = await store.stats(sub.id)
                    return st if (st.get("parked"), st["pending"]) == (2, 0) else None

                st = await until(parked, 20, "both alerts parked")
                return st, await store.parked(sub.id)

        st, parked = asyncio.run(main())
    assert rx.got == [] and st["failed"] == 0 and st["delivered"] == 0
    assert [orjson.loads(p["alert"])["alert_id"] for p in parked] == ["a-1", "a-2"]
    assert all(p["reason"].startswith("unsendable: ValueError") for p in parked), parked


def test_parked_alerts_are_sent_once_requeued_over_the_api(s: Settings) -> None:
    """POST /v1/subscriptions/{id}/parked/{parked_id}/requeue (admin) puts a parked alert back
    in the queue once: after the subscription was fixed the real sender delivers it."""
    with receiver() as rx, running_api(s) as api:
        root, reader = api.auth("root"), api.auth("reader")

        async def call(method: str, path: str, **kw: Any) -> Any:
            return await asyncio.to_thread(api.http.request, method, path, **kw)

        async def main() -> list[str]:
            async with sender(s) as store:
                sub = await subscribe(store, rx.url)
                await store.add(dataclasses.replace(sub, secret="whsec_not base64!"))
                for alert_id in ("a-1", "a-2"):
                    await queue(store, sub, alert_id)

                async def both_parked() -> bool:
                    return (await store.stats(sub.id)).get("parked") == 2

                await until(both_parked, 20, "both alerts parked")
                base = f"/v1/subscriptions/{sub.id}"
                parked = (await call("GET", f"{base}/parked", headers=root)).json()
                ids = [p["parked_id"] for p in parked]
                first = f"{base}/parked/{ids[0]}/requeue"
                assert (await call("POST", first, headers=reader)).status_code == 403
                assert (await call("POST", first)).status_code == 401
                fixed = await call("POST", f"{base}/rotate-secret?overlap_s=0", headers=root)
                assert fixed.status_code == 200, fixed.text
                answers = [
                    await call("POST", f"{base}/parked/{i}/requeue", headers=root) for i in ids
                ]
                assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
                again = await call("POST", first, headers=root)
                assert again.status_code == 404  # once only
                unknown = await call(
                    "POST", f"/v1/subscriptions/nope/parked/{ids[0]}/requeue", headers=root
                )
                assert unknown.status_code == 404

                async def delivered() -> bool:
                    st = await store.stats(sub.id)
                    return (st["delivered"], st["pending"]) == (2, 0)

                await until(delivered, 20, "both requeued alerts delivered")
                left = (await call("GET", f"{base}/parked", headers=root)).json()
                return [p["parked_id"] for p in left]

        left = asyncio.run(main())
        assert left == []
        assert [a["alert_id"] for a in rx.alerts()] == ["a-1", "a-2"]
