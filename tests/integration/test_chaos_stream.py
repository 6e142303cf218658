"""Fault injection on the scoring stream with real worker processes (issue 12, point 6):
kill -9 of a scorer at 20, 50 and 80% of a stream; poison records among good ones.

Records go straight to the broker (the API refuses poison before it gets there). Every wait is
bounded; each process is one this test started (tests.support.workers).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson
import pytest
import redis
from confluent_kafka import Producer

from riverwatch.core.kafka import produce_waiting
from riverwatch.core.limits import DEFAULT_LIMITS
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from tests.support.builders import T0, card_count
from tests.support.topics import consume_all, ids_on_topic, unscored
from tests.support.workers import poll, running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]


def rec(**fields: object) -> bytes:
    """A transaction with ``fields`` changed (``...`` drops a field)."""
    base: dict[str, object] = {
        "event_id": "p",
        "timestamp": "2026-03-01T12:00:00Z",
        "card_id": "c",
        "terminal_id": "t",
        "amount": 1.0,
    }
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


_LOOKS_VALID = rec()[:-1].rsplit(b'"amount"', 1)[0]  # the record up to its amount
POISON = [
    # malformed
    b"",
    b"{not json",
    b'{"event_id": "p", "timestamp": ',
    b"null",
    b"[]",
    b"42",
    b'"a string"',
    b'\xff\xfe{"event_id": 1}',
    b"[" * 5000 + b"]" * 5000,
    _LOOKS_VALID + b'"amount":NaN}',
    # wrong types
    rec(amount="ten"),
    rec(amount=None),
    rec(amount=[1]),
    rec(amount={"x": 1}),
    rec(amount=True),
    rec(card_id=...),
    rec(card_id=12345),
    rec(timestamp="yesterday"),
    rec(timestamp="2026-13-45T00:00:00Z"),
    rec(timestamp=True),
    rec(attributes=[1, 2]),
    # valid-looking but hostile: amounts that would overflow a card's sums
    rec(amount=1.7976931348623157e308),
    _LOOKS_VALID + b'"amount":1e400}',
    rec(amount=1e10),
    rec(amount=-5.0),
    # timestamps at and past the edges of the calendar window (1970-01-01 to 2100-01-01)
    rec(timestamp="2100-01-01T00:00:00Z"),
    rec(timestamp="1969-12-31T23:59:59Z"),
    rec(timestamp="9999-12-31T23:59:59Z"),
    rec(timestamp="0001-01-01T00:00:00Z"),
    rec(timestamp=-1),
    rec(timestamp=4_102_444_800),
    rec(timestamp=4_102_444_800_000),
    rec(timestamp=1e300),
    # control and non-ASCII characters in ids, escape sequences in text
    rec(card_id="c\x00"),
    rec(event_id="e\n1"),
    rec(terminal_id="t\u2028"),
    rec(event_id=" lead"),
    rec(event_id="x" * 129),
    rec(card_id="caf\u00e9"),
    rec(channel="web\x1b[2J"),
]


def produce(settings: Settings, records: Iterable[tuple[bytes | None, bytes]]) -> int:
    """Produce ``(key, value)`` records to ``transactions``; all acknowledged on return."""
    topic = Names(settings.topic_prefix).topic("transactions")
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 5})
    n = 0
    for key, value in records:
        produce_waiting(p, topic, value, key, 0.1)
        n += 1
    assert p.flush(60) == 0
    return n


def tx(i: int, card: str, amount: float = 10.0, ts: object = None) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{i}",
            "timestamp": T0 + i if ts is None else ts,
            "card_id": card,
            "terminal_id": f"t{i % 97}",
            "amount": amount,
        }
    )


def test_a_scorer_killed_at_20_50_and_80_percent_loses_nothing_and_counts_nothing_twice(
    settings: Settings, tmp_path: Path
) -> None:
    # Batches of 200 (not 1,000): the kills land within a few batches of their mark.
    settings = settings.model_copy(update={"score_batch_max": 200})
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    n, cards = 45_000, 50  # the stream; the margin after 80% absorbs a slow poll
    # One key: one partition, scored in order, so "record i scored" is the stream's progress.
    produce(settings, ((b"k", tx(i, f"c{i % cards}")) for i in range(n)))
    ids = [f"e{i}" for i in range(n)]

    def scored(i: int) -> bool:
        return bool(r.get(names.score(f"e{i}")))

    for k, share in enumerate((0.2, 0.5, 0.8)):
        with running_worker(settings, tmp_path / f"killed-{k}.log", "scoring", False) as w:
            t0 = time.monotonic()
            poll(lambda s=share: scored(int(n * s)), 120, f"{share:.0%} scored", every=0.002)
            w.kill()  # SIGKILL: no handler, no last commit
            w.wait()
        took = time.monotonic() - t0
        missing = set(unscored(r, names, ids))
        last = max((i for i in range(n) if f"e{i}" not in missing), default=-1)
        print(
            f"killed at {share:.0%}: {n - len(missing)} of {n} scored, the last e{last}, "
            f"{took:.1f} s after the start"
        )
        assert len(missing) > n // 10, f"the stream (nearly) ended before the kill at {share:.0%}"
    with running_worker(settings, tmp_path / "last.log", "scoring"):
        poll(lambda: scored(n - 1), 180, "the last record scored after the restarts", every=0.2)
        assert unscored(r, names, ids) == []
        # Each transaction counted once on its card, however often it was consumed.
        assert sum(card_count(r, names, f"c{c}") for c in range(cards)) == n
        on_topic = ids_on_topic(settings, set(ids))
    again = sum(on_topic.values()) - n
    print(f"3 kills -9 at 20/50/80% of {n}: {again} scores re-emitted on the topic")
    r.close()


def good(i: int, cards: int) -> bytes:
    """Good transaction ``i``; one in 50 at the edge of what the contract allows (the largest
    amount, on one card, whose sums must stay finite; the window's first second and nearly the
    latest time the clock's bound allows, RIVERWATCH_MAX_FUTURE_SKEW_S; the longest id)."""
    edge = i % 50
    if edge == 1:
        return tx(i, "c-rich", amount=1e9)
    if edge == 2:
        return tx(i, "c-1970", ts="1970-01-01T00:00:00Z")
    if edge == 3:
        return tx(i, "c-ahead", ts=time.time() + DEFAULT_LIMITS.max_future_skew_s - 3600)
    if edge == 4:
        long_id = f"e{i}".rjust(128, "x")
        return orjson.dumps({**orjson.loads(tx(i, "c0")), "event_id": long_id})
    return tx(i, f"c{i % cards}", amount=1.0 + i % 500)


def test_poison_among_good_records_is_dead_lettered_and_the_scorer_never_exits(
    settings: Settings, tmp_path: Path
) -> None:
    """1,000 poison records of 40 kinds among 100,000 good: every good one scored with a finite
    score, every poison one in ``deadletter`` with its reason, and the scorer never exits."""
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    n, n_bad, cards = 100_000, 1000, 200
    every = n // n_bad
    bad = [POISON[k % len(POISON)] for k in range(n_bad)]
    ids: list[str] = []

    def stream() -> Iterator[tuple[bytes | None, bytes]]:
        for i in range(n):
            value = good(i, cards)
            ids.append(orjson.loads(value)["event_id"])
            yield orjson.loads(value)["card_id"].encode(), value
            if i % every == every - 1:  # the poison shares keys (and so batches) with good ones
                yield f"c{i % cards}".encode(), bad[i // every]

    t0 = time.monotonic()
    with running_worker(settings, tmp_path / "scorer.log", "scoring") as w:
        produce(settings, stream())
        poll(lambda: not unscored(r, names, ids[-50:]), 300, "the last records scored", every=1)
        missing = poll(lambda: unscored(r, names, ids) or "none", 120, "every score", every=1)
        took = time.monotonic() - t0
        assert missing == "none"
        dead = [orjson.loads(v) for v in consume_all(settings, names.topic("deadletter"), n_bad)]
        with pytest.raises(AssertionError, match="timed out"):
            consume_all(settings, names.topic("deadletter"), n_bad + 1, timeout=3)
        assert w.poll() is None, "the scorer exited"
    print(f"{n} good + {n_bad} poison: all handled in {took:.1f} s, 0 scorer exits")
    assert Counter(d["value"] for d in dead) == Counter(b.decode("utf-8", "replace") for b in bad)
    assert all(d["error"] and d["origin_topic"] == names.topic("transactions") for d in dead)
    assert len({(d["partition"], d["offset"]) for d in dead}) == n_bad
    scores = [orjson.loads(v) for v in r.mget([names.score(e) for e in ids if "x" in e])]
    rich = r.mget([names.score(f"e{i}") for i in range(1, n, 50)])
    for s in [*scores, *(orjson.loads(v) for v in rich)]:
        assert math.isfinite(s["score"]) and s["decision"] in ("approve", "review", "decline")
    r.close()
