"""Request-latency middleware: observes ``HTTP_LATENCY`` by route template, method, status."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.metrics import HTTP_LATENCY


class LatencyMiddleware:
    """Pure ASGI middleware (no body buffering), so streamed uploads stay streamed.

    The route label is the matched template (``/v1/scores/{event_id}``), never the raw path,
    so the metric's cardinality stays bounded; unmatched paths share ``(unmatched)``.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = getattr(scope.get("route"), "path", "(unmatched)")
            HTTP_LATENCY.labels(route=route, method=scope["method"], status=str(status)).observe(
                time.perf_counter() - started
            )
