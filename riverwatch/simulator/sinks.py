"""Where simulated events go: Kafka topics, the HTTP ingest API, or an NDJSON file.

Every sink takes lists of :class:`SimEvent` (``send``) and must be closed (``close``), which
flushes and raises if anything was not delivered. Sinks are context managers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, cast, get_args

import httpx
import orjson

from riverwatch.core.errors import RiverwatchError
from riverwatch.core.kafka import KafkaConfig, produce_waiting
from riverwatch.core.kafka import producer as kafka_producer
from riverwatch.core.names import Names
from riverwatch.simulator.base import SimEvent, SimTopic

_TOPICS: tuple[str, ...] = get_args(SimTopic)
_MAX_ERRORS = 10


class SinkError(RiverwatchError):
    """Events could not be delivered; the message says where and what the other side said."""


class Sink(Protocol):
    """Anything that takes batches of simulated events."""

    def send(self, events: list[SimEvent]) -> None:
        """Deliver (or queue) ``events``; raise :class:`SinkError` on a failure seen so far."""
        ...

    def close(self) -> None:
        """Flush what is queued, release resources, raise if anything was not delivered."""
        ...


class _Closing:
    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class KafkaSink(_Closing):
    """Produce each event to ``names.topic(ev.topic)`` keyed by ``ev.key``.

    Uses the idempotent producer of ``core.kafka.producer`` on ``kafka`` unless one is passed
    (tests). A full local queue blocks ``send`` until the broker catches up; delivery errors
    are raised by the next ``send`` or by ``close``, which flushes for at most
    ``flush_timeout_s``.
    """

    def __init__(
        self,
        kafka: KafkaConfig,
        names: Names,
        *,
        producer: Any = None,
        flush_timeout_s: float = 30.0,
    ) -> None:
        self._producer = producer if producer is not None else kafka_producer(kafka)
        self._topics = {t: names.topic(t) for t in _TOPICS}
        self._flush_timeout_s = flush_timeout_s
        self._errors: list[str] = []

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None and len(self._errors) < _MAX_ERRORS:
            self._errors.append(f"delivery to {msg.topic()} failed: {err}")

    def _raise_errors(self) -> None:
        if self._errors:
            raise SinkError("; ".join(self._errors))

    def send(self, events: list[SimEvent]) -> None:
        """Queue ``events`` for the broker and serve pending delivery reports."""
        self._raise_errors()
        poll = self._producer.poll
        for ev in events:
            topic, value, key = self._topics[ev.topic], orjson.dumps(ev.payload), ev.key.encode()
            produce_waiting(self._producer, topic, value, key, 0.1, on_delivery=self._on_delivery)
        poll(0)
        self._raise_errors()

    def close(self) -> None:
        """Flush; raise :class:`SinkError` on delivery errors or undelivered messages."""
        remaining = self._producer.flush(self._flush_timeout_s)
        self._raise_errors()
        if remaining:
            raise SinkError(
                f"{remaining} messages still undelivered after {self._flush_timeout_s}s; "
                "is the broker reachable (RIVERWATCH_KAFKA_BOOTSTRAP)?"
            )


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        return min(max(float(response.headers["retry-after"]), 0.0), 60.0)
    except (KeyError, ValueError):
        return min(0.5 * 2**attempt, 30.0)


class HttpSink(_Closing):
    """POST events as JSON lists to ``{base_url}/v1/{transactions|labels|metrics}``.

    Within a batch, transactions go first, then labels, then metrics (each in event order),
    in requests of at most ``max_batch`` records. 503 and 429 are retried after the
    server's ``Retry-After`` (or an exponential backoff), as are connection errors, up to
    ``max_retries`` times; any other non-2xx raises :class:`SinkError` with the server's body.
    429 (the scorers are behind, RIVERWATCH_MAX_LAG) is backpressure, not a failure: it is
    waited out for up to ``max_backpressure_s`` per request before it counts as a retry.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 10.0,
        max_retries: int = 5,
        max_backpressure_s: float = 900.0,
        max_batch: int = 1000,
        client: httpx.Client | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout_s)
        self._max_retries = max_retries
        self._max_backpressure_s = max_backpressure_s
        self._max_batch = max_batch
        self._sleep = sleep

    def send(self, events: list[SimEvent]) -> None:
        """POST ``events``, one request per topic and chunk; raise on a refused request."""
        for topic in _TOPICS:
            payloads = [ev.payload for ev in events if ev.topic == topic]
            for i in range(0, len(payloads), self._max_batch):
                self._post(topic, orjson.dumps(payloads[i : i + self._max_batch]))

    def _post(self, topic: str, body: bytes) -> None:
        url = f"{self._base}/v1/{topic}"
        attempt, throttled = 0, 0.0
        while True:
            last = attempt >= self._max_retries
            try:
                response = self._client.post(url, content=body, headers=self._headers)
            except httpx.TransportError as exc:
                if last:
                    raise SinkError(f"POST {url} failed: {exc}") from exc
                self._sleep(min(0.5 * 2**attempt, 30.0))
                attempt += 1
                continue
            if response.status_code == 429 and throttled < self._max_backpressure_s:
                wait = max(_retry_after(response, 0), 0.05)
                self._sleep(wait)
                throttled += wait
                continue
            if response.status_code in (429, 503) and not last:
                self._sleep(_retry_after(response, attempt))
                attempt += 1
                continue
            if response.is_success:
                return
            raise SinkError(f"POST {url} -> {response.status_code}: {response.text[:2000]}")

    def close(self) -> None:
        """Close the HTTP client if this sink created it."""
        if self._own_client:
            self._client.close()


class NdjsonSink(_Closing):
    """Write one JSON object per line: ``{"topic", "key", "payload", "at"}``.

    ``at`` keeps the simulated time so :func:`read_ndjson` can replay the file with the same
    pacing. With ``truth=True`` a ``"truth"`` object (fraud, scenario, anomaly) is added, for
    offline benchmarks; a replay to the system still only sends the payloads.
    """

    def __init__(self, path: str | Path, *, truth: bool = False, append: bool = False) -> None:
        self.path = Path(path)
        self._truth = truth
        self._file = self.path.open("ab" if append else "wb")

    def send(self, events: list[SimEvent]) -> None:
        """Append ``events`` to the file."""
        lines = []
        for ev in events:
            record: dict[str, Any] = {
                "topic": ev.topic,
                "key": ev.key,
                "payload": ev.payload,
                "at": ev.at,
            }
            if self._truth:
                record["truth"] = {
                    "fraud": ev.fraud,
                    "scenario": ev.scenario,
                    "anomaly": ev.anomaly,
                }
            lines.append(orjson.dumps(record))
        if lines:
            self._file.write(b"\n".join(lines) + b"\n")

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()


def _epoch(timestamp: Any) -> float:
    if isinstance(timestamp, int | float):
        return float(timestamp)
    parsed = datetime.fromisoformat(str(timestamp))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def read_ndjson(path: str | Path) -> Iterator[SimEvent]:
    """Read events written by :class:`NdjsonSink` (or by hand: ``at`` and ``truth`` optional).

    Without ``at``, the simulated time is the payload's ``timestamp``. Blank lines are
    skipped; a malformed line raises ``ValueError`` naming its line number.
    """
    with Path(path).open("rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                topic = obj["topic"]
                if topic not in _TOPICS:
                    raise ValueError(f"unknown topic {topic!r}")
                payload = obj["payload"]
                at = obj["at"] if "at" in obj else _epoch(payload["timestamp"])
                truth = obj.get("truth") or {}
                event = SimEvent(
                    float(at),
                    cast(SimTopic, topic),
                    str(obj["key"]),
                    payload,
                    fraud=truth.get("fraud"),
                    scenario=truth.get("scenario"),
                    anomaly=truth.get("anomaly"),
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: not a simulator event: {exc}") from exc
            yield event
