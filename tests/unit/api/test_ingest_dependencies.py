"""The ingest routes' dependencies all run on the event loop (issue 15, ``make bench-ingest``).

FastAPI runs a plain ``def`` dependency in its thread pool: a thread hop (and GIL hand-off)
per request, which cost about a sixth of a one-record POST's CPU in the API process.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from riverwatch.api.routes.ingest import router

INGEST = ("/v1/transactions", "/v1/labels", "/v1/metrics")


def _calls(dependant: Dependant) -> list[Any]:
    out = []
    for dep in dependant.dependencies:
        out.append(dep.call)
        out.extend(_calls(dep))
    return out


def _runs_on_the_loop(call: Any) -> bool:
    if inspect.iscoroutinefunction(call):
        return True
    # a security scheme instance (HTTPBearer) with an async __call__
    return not inspect.isfunction(call) and inspect.iscoroutinefunction(type(call).__call__)


def test_every_ingest_dependency_is_a_coroutine() -> None:
    routes = [r for r in router.routes if isinstance(r, APIRoute) and r.path in INGEST]
    assert {r.path for r in routes} == set(INGEST)
    for route in routes:
        calls = _calls(route.dependant)
        assert calls, route.path  # the key check and the resources
        sync = [getattr(c, "__name__", repr(c)) for c in calls if not _runs_on_the_loop(c)]
        assert not sync, f"{route.path}: {sync} would run in the thread pool per request"
