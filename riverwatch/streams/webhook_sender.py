"""The webhook sender of a worker: one asyncio task per subscription it holds the lease of.

Each subscription has exactly one sender across workers (a Redis lease, renewed while it
works; a dead worker's subscriptions move to another within ``LEASE_S``), and a slow
receiver only ever delays itself: every task has its own queue, backoff and timeouts. A task
POSTs its queue in order, signed per Standard Webhooks (alerts.signing), retries with jittered
exponential backoff, fails an alert past the attempts or the retry horizon, and disables the
subscription on 410 Gone. Alerts leave the queue only when delivered, failed or parked, so a
receiver that is down gets everything once it is back.

An alert that no retry could send (not an alert at all, or a request the HTTP client refuses
to build) is parked: moved with its reason to the subscription's ``parked`` stream, counted
(``riverwatch_webhook_deliveries_total{outcome="parked"}``, ``stats.parked``) and logged, and
the queue goes on. One alert never stops a subscription's sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx
from redis.exceptions import RedisError

from riverwatch.alerts.addresses import UnsafeURL, post
from riverwatch.alerts.rules import (
    RetryState,
    alert_message_id,
    digest_body,
    digest_due,
    digest_message_id,
    status_outcome,
)
from riverwatch.alerts.store import AlertStore, Entry, entry_age_s, id_key
from riverwatch.alerts.subscription import Subscription
from riverwatch.context_parts import WebhookConfig
from riverwatch.core.metrics import WEBHOOK_DELIVERIES
from riverwatch.streams.records import iso

log = logging.getLogger(__name__)
LEASE_S = 10.0
SUPERVISE_S = 0.5
IDLE_BLOCK_MS = 1000
DIGEST_MAX = 500
# Failures of the client itself: the same request would fail the same way on every retry.
UNSENDABLE = (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL)


class Deliveries:
    """The webhook sender: one task per subscription this worker holds the lease of."""

    def __init__(self, config: WebhookConfig, store: AlertStore, worker: str):
        self.cfg = config
        self.store = store
        self.worker = worker
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.client = httpx.AsyncClient(
            timeout=config.timeout_s,
            follow_redirects=False,  # a redirect could point anywhere, past the address check
            trust_env=False,  # a proxy would connect to the name, not the checked address
            # Each task holds at most one connection; a pool cap would make busy receivers
            # queue behind each other and time out through no fault of their own.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
            headers={"user-agent": "riverwatch-webhooks/1", "content-type": "application/json"},
        )

    async def run(self) -> None:
        """Start a task for every active subscription nobody serves; runs until cancelled."""
        while True:
            try:
                for sid in [s for s, t in self.tasks.items() if t.done()]:
                    task = self.tasks.pop(sid)
                    if not task.cancelled() and task.exception() is not None:
                        log.error("webhook task %s died: %r", sid, task.exception())
                for sub in await self.store.all():
                    if sub.status != "active" or sub.id in self.tasks:
                        continue
                    if await self.store.hold_lease(sub.id, self.worker, LEASE_S):
                        self.tasks[sub.id] = asyncio.create_task(self._serve(sub.id))
            except (RedisError, OSError) as exc:
                log.warning("webhook supervisor: Redis error %s; retrying", exc)
            except Exception:  # the supervisor must outlive any one bad subscription
                log.exception("webhook supervisor failed; retrying")
            await asyncio.sleep(SUPERVISE_S)

    async def stop(self) -> None:
        """Cancel the tasks, hand the leases back, close the HTTP client."""
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            for sid in self.tasks:
                await self.store.release_lease(sid, self.worker)
        await self.client.aclose()

    async def _mine(self, sid: str) -> Subscription | None:
        sub = await self.store.get(sid)
        if sub is None or sub.status != "active":
            return None
        return sub if await self.store.hold_lease(sid, self.worker, LEASE_S) else None

    async def _pause(self, sid: str, seconds: float) -> None:
        # Sleep in slices shorter than the lease, renewing it, so a long backoff keeps it.
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, LEASE_S / 3))
            if await self._mine(sid) is None:  # deleted or disabled meanwhile: stop waiting
                return

    async def _serve(self, sid: str) -> None:
        # Redis errors end the task; the supervisor starts a new one half a second later.
        c = self.cfg
        retry = RetryState(c.backoff_base_s, c.backoff_max_s, c.max_attempts, c.retry_horizon_s)
        frozen = ""  # a digest being retried keeps its alerts, and so its webhook-id
        while (sub := await self._mine(sid)) is not None:
            digest = sub.digest_interval_s
            entries = await self.store.pending(sid, DIGEST_MAX if digest else 1, IDLE_BLOCK_MS)
            if frozen:
                entries = [e for e in entries if id_key(e[0]) <= id_key(frozen)]
            entries = await self._readable(sid, entries)
            if not entries:
                continue
            head, age = entries[0][0], entry_age_s(entries[0][0])
            if age >= c.retry_horizon_s:  # came back too late: fail without a POST
                await self._fail(sid, [head], "past the retry horizon")
                continue
            if digest and not digest_due(age, digest, len(entries) >= DIGEST_MAX):
                await self._pause(sid, min(1.0, digest - age))
                continue
            # Read it again: a rotation or a disable while pending() waited applies to this POST.
            if (sub := await self._mine(sid)) is None:
                continue
            outcome = await self._post(sub, entries)
            if outcome == "gone":
                return
            frozen = ""
            if outcome == "parked":  # says nothing about the receiver: no backoff
                continue
            if outcome == "delivered":
                retry.succeeded()
                continue
            give_up, delay = retry.failed(head, age)
            if give_up:
                await self._fail(sid, [e[0] for e in entries], f"gave up after {retry.tries} tries")
            elif digest:
                frozen = entries[-1][0]
            await self._pause(sid, delay)

    async def _fail(self, sid: str, ids: list[str], why: str) -> None:
        await self.store.settle(sid, ids, "failed", last_failure=why)
        WEBHOOK_DELIVERIES.labels("failed").inc(len(ids))

    async def _readable(self, sid: str, entries: list[Entry]) -> list[Entry]:
        """The entries that are alerts; the others are parked (no retry could send them)."""
        good = []
        for entry in entries:
            try:
                alert_message_id(entry[1])
            except ValueError as exc:
                await self._park(sid, [entry], str(exc))
            else:
                good.append(entry)
        return good

    async def _park(self, sid: str, entries: list[Entry], reason: str) -> None:
        await self.store.park(sid, entries, reason)
        WEBHOOK_DELIVERIES.labels("parked").inc(len(entries))
        ids = ", ".join(e[0] for e in entries)
        log.warning("webhook %s: alert(s) %s parked: %r", sid, ids, reason)

    async def _post(self, sub: Subscription, entries: list[Entry]) -> str:
        """POST ``entries`` (one alert, or a digest list).

        Returns ``delivered``, ``gone``, ``retry`` or ``parked`` (this request can never be
        sent as it is: its alerts are parked and the queue goes on).
        """
        ids = [e[0] for e in entries]
        now, label = iso(time.time()), ""
        try:
            if sub.digest_interval_s:  # the id is stable across retries: the batch is the same
                body = digest_body(e[1] for e in entries)
                msg_id = digest_message_id(sub.id, ids[0], ids[-1])
            else:
                body, msg_id = entries[0][1], alert_message_id(entries[0][1])
            status = await post(
                self.client,
                sub.url,
                sub.signing_secrets(time.time()),  # both during a rotation's overlap
                msg_id,
                body,
                self.cfg.allow_loopback,
                self.cfg.timeout_s,
            )
            error = "" if 200 <= status < 300 else f"HTTP {status}"
        except UnsafeURL as exc:  # DNS may have changed since registration
            status, error, label = 0, f"refused: {exc}", "refused"
        except UNSENDABLE as exc:
            return await self._unsendable(sub.id, entries, now, exc)
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            status, error = 0, f"{type(exc).__name__}: {exc}".rstrip(": ")
        except Exception as exc:  # one unsendable request (or a bug) costs its alerts only
            log.exception("webhook %s: building or sending %s failed", sub.id, ids)
            return await self._unsendable(sub.id, entries, now, exc)
        outcome = status_outcome(status)
        WEBHOOK_DELIVERIES.labels(label or outcome).inc(len(ids) if outcome == "delivered" else 1)
        await self.store.note(sub.id, last_status=status, last_error=error, last_attempt_at=now)
        if outcome == "delivered":
            await self.store.settle(sub.id, ids, "delivered", last_delivered_at=now)
        elif outcome == "gone":  # the receiver wants nothing more, this alert included
            await self.store.disable(sub.id, f"the receiver answered 410 Gone at {now}")
            await self._fail(sub.id, ids, "the receiver answered 410 Gone")
        return outcome

    async def _unsendable(self, sid: str, entries: list[Entry], now: str, exc: Exception) -> str:
        reason = f"unsendable: {type(exc).__name__}: {exc}"
        await self.store.note(sid, last_status=0, last_error=reason, last_attempt_at=now)
        await self._park(sid, entries, reason)
        return "parked"
