"""Reading a confluent-kafka consumer for the batch loop: a batch of what is fetched, as
:class:`Record` s, and the consumer-lag gauge from librdkafka's statistics."""

from __future__ import annotations

import logging
import time

import orjson
from confluent_kafka import Consumer, KafkaError, Message

from riverwatch.core.metrics import CONSUMER_LAG
from riverwatch.streams.records import Record

log = logging.getLogger(__name__)


def next_batch(c: Consumer, n: int, block_s: float, fill_s: float = 0.0) -> list[Message]:
    """Up to ``n`` messages: what is already fetched, else the first within ``block_s`` and
    what came with it; with ``fill_s``, topped up for at most that long once the first is in
    (a consumer that is not on the latency path: fewer, larger batches, fewer commits)."""
    msgs = _first(c, n, block_s)
    if fill_s > 0 and msgs:
        deadline = time.monotonic() + fill_s
        while len(msgs) < n and (left := deadline - time.monotonic()) > 0:
            msgs += c.consume(n - len(msgs), timeout=left)
    return msgs


def _first(c: Consumer, n: int, block_s: float) -> list[Message]:
    # consume(n, timeout) only returns early when n messages are in, so at low rates it
    # would add its whole timeout to every event's latency. Instead: take what is already
    # fetched, else block for the first message and take what came with it. No top-up
    # wait: a batch is whatever arrived while the last one was handled, so batches grow
    # with the load by themselves.
    msgs = c.consume(n, timeout=0)
    if msgs:
        return msgs
    msgs = c.consume(1, timeout=block_s)
    if msgs and n > 1:
        msgs += c.consume(n - 1, timeout=0)
    return msgs


def to_records(msgs: list[Message], name: str) -> list[Record]:
    """The records of ``msgs``; consumer errors are logged (as ``name``'s) and skipped."""
    records = []
    for m in msgs:
        err = m.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("%s: consumer error %s", name, err)
            continue
        _, ts = m.timestamp()
        records.append(
            Record(
                m.topic() or "",
                m.partition() or 0,
                m.offset() or 0,
                m.key(),
                m.value(),
                ts or None,
            )
        )
    return records


def report_lag(raw: str, topic: str, label: str, assigned: frozenset[int]) -> None:
    """Set the lag gauge of the ``assigned`` partitions of ``topic`` (metric label ``label``)
    from librdkafka's statistics JSON ``raw``."""
    # -1 says "unknown" (the gauge's max across processes then shows the owner's figure).
    stats = orjson.loads(raw)
    for p, part in stats.get("topics", {}).get(topic, {}).get("partitions", {}).items():
        if p != "-1" and int(p) in assigned:
            lag = part.get("consumer_lag", -1)
            CONSUMER_LAG.labels(topic=label, partition=p).set(max(lag, -1))
