"""Fakes for driving a BatchLoop without a broker (unit tests of its cadence): a producer that
acknowledges at once and a consumer fed one record every 5 ms that counts its commits."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any


class FakeProducer:
    def __init__(self) -> None:
        self.produced: list[tuple[str, bytes | None, Any]] = []

    def produce(self, topic: str, value: bytes, key: bytes | None, on_delivery: Any) -> None:
        self.produced.append((topic, key, on_delivery))
        on_delivery(None, None)

    def poll(self, _timeout: float = 0) -> int:
        return 0

    def flush(self, _timeout: float = 0) -> int:
        return 0


class TrickleConsumer:
    """A consumer fed one record of ``topic`` every 5 ms (200/s); counts the commits."""

    def __init__(self, topic: str):
        self.topic, self.offset, self.commits = topic, 0, 0

    def subscribe(self, _topics: list[str], **_callbacks: Any) -> None:
        pass

    def consume(self, n: int, timeout: float = 0) -> list[Any]:
        time.sleep(min(timeout, 0.005))
        if timeout < 0.005:
            return []
        self.offset += 1
        m = SimpleNamespace(
            error=lambda: None, topic=lambda: self.topic, partition=lambda: 0,
            offset=lambda o=self.offset: o, key=lambda: None, value=lambda: b"s",
            timestamp=lambda: (0, 0),
        )  # fmt: skip
        return [m]

    def commit(self, **_kw: Any) -> None:
        self.commits += 1

    def close(self) -> None:
        pass
