"""FastAPI dependencies as ``Annotated`` aliases: declare ``key: IngestKey`` in a route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from riverwatch.api.auth import require_scope
from riverwatch.api.resources import Resources, get_resources
from riverwatch.api.streamauth import stream_key
from riverwatch.core.apikeys import KeyInfo

ResourcesDep = Annotated[Resources, Depends(get_resources)]
IngestKey = Annotated[KeyInfo, Depends(require_scope("ingest"))]
ReadKey = Annotated[KeyInfo, Depends(require_scope("read"))]
AdminKey = Annotated[KeyInfo, Depends(require_scope("admin"))]
# Event streams: the Bearer key, or a stream token as ?token= (EventSource sends no headers).
StreamKey = Annotated[KeyInfo, Depends(stream_key)]
