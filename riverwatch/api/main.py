"""The FastAPI app factory: ``create_app(ctx)``; nothing happens at import time.

The shell builds the composition root's context from the settings and serves the app
(``riverwatch api``); tests do the same with
``uvicorn.Server(uvicorn.Config(create_app(Context.from_settings(settings)), ...))``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from riverwatch.api.middleware import (
    BodyLimitMiddleware,
    LatencyMiddleware,
    SecurityHeadersMiddleware,
)
from riverwatch.api.openapi import install as install_openapi
from riverwatch.api.resources import open_resources
from riverwatch.api.routes import (
    alerts,
    dashboard,
    forecasts,
    health,
    ingest,
    score,
    scores,
    subscriptions,
)
from riverwatch.api.routes import demo as demo_routes
from riverwatch.api.routes import models as model_routes
from riverwatch.api.routes import monitor as monitor_routes
from riverwatch.context import Context
from riverwatch.core.errors import ServiceUnavailable
from riverwatch.core.redis import UNAVAILABLE as REDIS_UNAVAILABLE


def package_version() -> str:
    """The installed riverwatch version (``0+unknown`` when run from an uninstalled tree)."""
    try:
        return version("riverwatch")
    except PackageNotFoundError:
        return "0+unknown"


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    # A backing service is slow or down: the client should retry, not give up.
    detail = str(exc)
    if isinstance(exc, REDIS_UNAVAILABLE):
        detail = f"Redis cannot take requests now ({type(exc).__name__}: {exc}); retry in a moment"
    return JSONResponse(
        {"detail": detail},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "1"},
    )


def create_app(ctx: Context) -> FastAPI:
    """Build the API for ``ctx``; its lifespan opens the producer and Redis client.

    The clients connect lazily, so the app starts even when the broker is down (``/readyz``
    says so). Shutdown flushes the producer: every record answered 202 reaches the broker.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = open_resources(ctx)
        app.state.resources = resources
        try:
            yield
        finally:
            await resources.close()

    # /docs and /redoc load their scripts from this server (fastapi-offline ships them), never
    # from a CDN; RIVERWATCH_API_DOCS=false turns them off.
    config = ctx.api_config
    docs = config.docs
    app = FastAPIOffline(
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        static_url="/static-docs",
        title="riverwatch",
        version=package_version(),
        description="Streaming real-time analytics and monitoring for machine-learning models.",
        lifespan=lifespan,
    )
    # The last added runs first: latency sees every answer, the headers go on every answer,
    # and an oversized body is refused before routing.
    app.add_middleware(BodyLimitMiddleware, limit=config.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(LatencyMiddleware)
    app.add_exception_handler(ServiceUnavailable, _unavailable)
    for unavailable in REDIS_UNAVAILABLE:
        app.add_exception_handler(unavailable, _unavailable)
    app.include_router(health.router)
    app.include_router(ingest.router)
    app.include_router(scores.router)
    app.include_router(score.router)
    app.include_router(forecasts.router)
    app.include_router(alerts.router)
    app.include_router(subscriptions.router)
    app.include_router(dashboard.router)
    app.include_router(model_routes.router)
    app.include_router(monitor_routes.router)
    app.include_router(demo_routes.router)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    install_openapi(app, config)
    return app
