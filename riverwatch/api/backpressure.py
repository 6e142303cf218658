"""Backpressure: POST /v1/transactions answers 429 while the scorers lag too far behind.

The lag is the scorer group's on ``transactions``: summed over partitions, the high watermark
less the committed offset (less the low watermark where the group committed nothing). One
consumer client that never subscribes (so it never joins the group) reads it, at most once per
``ttl_s`` like /readyz's partition count, so a flood of refused requests costs no broker round
trips. Between two reads the transactions this process accepted are added to the last figure,
so a fast producer cannot slip a second's worth of records past the bound. While the broker
does not answer the lag is unknown and nothing is refused for it (the broker-down check
answers 503 then).
"""

from __future__ import annotations

import asyncio
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition
from fastapi import HTTPException, status

from riverwatch.core.kafka import KafkaConfig, consumer

RETRY_AFTER_S = 1


class LagGate:
    """The scorers' lag on ``topic`` (group ``group``), cached; :meth:`check` refuses over
    ``max_lag`` (RIVERWATCH_MAX_LAG)."""

    def __init__(
        self,
        kafka: KafkaConfig,
        max_lag: int,
        topic: str,
        group: str,
        ttl_s: float = 1.0,
        timeout_s: float = 2.0,
    ):
        self.kafka, self.max_lag, self.topic, self.group = kafka, max_lag, topic, group
        self.ttl_s, self.timeout_s = ttl_s, timeout_s
        self._client: Consumer | None = None
        self._lock = asyncio.Lock()
        self._at = float("-inf")
        self._lag: int | None = None
        self._since = 0  # transactions accepted here since the last read

    def note_accepted(self, count: int) -> None:
        """``count`` transactions were just accepted (the lag grows by as much until read)."""
        self._since += count

    async def lag(self) -> int | None:
        """The last lag read plus what was accepted here since, read again (in a thread) when
        older than ``ttl_s``; None if unknown."""
        async with self._lock:
            if time.monotonic() - self._at >= self.ttl_s:
                since = self._since
                self._lag = await asyncio.to_thread(self._fetch)
                self._since -= since  # what was accepted during the read is not in it for sure
                self._at = time.monotonic()
            return None if self._lag is None else self._lag + self._since

    def _fetch(self) -> int | None:
        try:
            if self._client is None:
                self._client = consumer(self.kafka, self.group)
            c = self._client
            meta = c.list_topics(self.topic, timeout=self.timeout_s).topics.get(self.topic)
            if meta is None or meta.error is not None:
                return None
            parts = [TopicPartition(self.topic, p) for p in meta.partitions]
            lag = 0
            for tp in c.committed(parts, timeout=self.timeout_s):
                low, high = c.get_watermark_offsets(tp, timeout=self.timeout_s)
                lag += max(0, high - (tp.offset if tp.offset >= 0 else low))
            return lag
        except KafkaException:
            return None

    async def check(self) -> None:
        """Raise 429 with Retry-After while the lag is over RIVERWATCH_MAX_LAG (0: never)."""
        bound = self.max_lag
        if bound <= 0:
            return
        lag = await self.lag()
        if lag is not None and lag > bound:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"the scorers are {lag:,} transactions behind, more than RIVERWATCH_MAX_LAG "
                f"({bound:,}); nothing of this request was read or stored; retry after "
                f"{RETRY_AFTER_S} s",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )

    def close(self) -> None:
        """Close the client (blocking)."""
        if self._client is not None:
            self._client.close()
            self._client = None
