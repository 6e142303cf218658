"""Pure ASGI middleware: request latency, the body limit, security headers."""

from __future__ import annotations

import time

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from riverwatch.core.metrics import HTTP_LATENCY


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


class BodyTooLarge(HTTPException):
    """413, raised from ``receive`` when a body grows past the limit (an HTTPException, so
    FastAPI's body parsing and ``request.stream()`` readers pass it on to the 413 answer)."""

    def __init__(self, limit: int):
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"the body is larger than the limit of {limit} bytes (RIVERWATCH_API_MAX_BODY_BYTES); "
            "split it into smaller requests",
        )


class BodyLimitMiddleware:
    """Every route's body limit, checked before the body is read.

    A declared ``Content-Length`` over the limit is refused at once, before routing, auth or
    any read; a chunked body is counted as it arrives and refused when it passes the limit.
    (FastAPI's own ``max_body_size`` answers a declared overrun only when the app first reads
    or answers, after the route's dependencies ran, and its message names no setting.)
    """

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            # Connection: close: the unread rest of the body must not be taken for a request.
            exc = BodyTooLarge(self.limit)
            answer = JSONResponse(
                {"detail": exc.detail}, exc.status_code, headers={"Connection": "close"}
            )
            await answer(scope, receive, send)
            return
        size, started = 0, False

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except BodyTooLarge as exc:  # a reader that did not turn it into the answer itself
            if started:
                raise
            answer = JSONResponse({"detail": exc.detail}, exc.status_code)
            await answer(scope, receive, send)


# Sent with every response: no MIME sniffing, and no powerful browser feature for any page.
SECURITY_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"permissions-policy": b"accelerometer=(), camera=(), geolocation=(), gyroscope=(), "
    b"magnetometer=(), microphone=(), payment=(), usb=()",
}


class SecurityHeadersMiddleware:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS.items() if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
