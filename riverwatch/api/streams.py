"""Caps on open server-sent-event streams, overall and per API key.

A stream is counted from the moment its response starts until it ends (the client went away,
the server stopped it, or it ran out), so a refused or dropped stream never holds a slot.

>>> slots = StreamSlots(total=2, per_key=1)
>>> slots.take("a"), slots.take("a") is None, slots.take("b"), slots.take("c") is None
(None, False, None, False)
>>> slots.give_back("a"); slots.take("c") is None
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass, field

from fastapi import status
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

RETRY_AFTER_S = 5


@dataclass
class StreamSlots:
    """How many streams are open, overall and per key (one event loop: no lock needed)."""

    total: int
    per_key: int
    _open: Counter[str] = field(default_factory=Counter)

    def take(self, key: str) -> str | None:
        """Open a slot for ``key``; None when done, else the reason it is refused."""
        if self._open[key] >= self.per_key:
            return (
                f"the key '{key}' already has {self._open[key]} open event streams "
                "(RIVERWATCH_API_MAX_STREAMS_PER_KEY); close one or retry later"
            )
        if self._open.total() >= self.total:
            return (
                f"the API already serves {self._open.total()} event streams "
                "(RIVERWATCH_API_MAX_STREAMS); retry later"
            )
        self._open[key] += 1
        return None

    def give_back(self, key: str) -> None:
        """Close one of ``key``'s slots."""
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]

    def count(self) -> int:
        """Streams open now."""
        return self._open.total()


class LimitedStream(StreamingResponse):
    """A streaming response that holds a slot of ``slots`` for ``key`` while it runs.

    Over a cap it answers 429 with ``Retry-After`` instead, without starting the stream.
    """

    def __init__(
        self,
        content: AsyncIterable[bytes],
        slots: StreamSlots,
        key: str,
        media_type: str = "text/event-stream",
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(content, media_type=media_type, headers=headers)
        self.slots, self.key = slots, key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream while holding a slot, or answer 429."""
        refused = self.slots.take(self.key)
        if refused is not None:
            answer = JSONResponse(
                {"detail": refused},
                status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
            await answer(scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slots.give_back(self.key)
