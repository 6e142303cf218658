"""The feature store's cached window values (the read script keeps an entity's last query in its
day hash, the write script keeps it up to date): one read call that queries an entity at
several buckets, the cached one among them, in any order, returns the buckets' window sums and
maximums, and so does the next call. (A read that updated the values it had read along with
the cache would serve the cached bucket another bucket's values: this test fails on it.)
"""

from __future__ import annotations

import random
import struct
import time
from typing import cast

import orjson
import pytest
import redis

from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.features import WINDOWS_DAYS, FeatureSpec, window_sums
from riverwatch.stores.features import Increments, RedisFeatureStore

pytestmark = pytest.mark.integration

SPEC = FeatureSpec(3600, 7)
P = SPEC.per_day
SPANS = tuple(w * P for w in WINDOWS_DAYS)


def _close(got: list[tuple[float, float, float]], want: list[tuple[float, float, float]]) -> bool:
    return all(
        g[0] == w[0] and abs(g[1] - w[1]) <= 1e-9 * max(1.0, w[1]) and g[2] == w[2]
        for g, w in zip(got, want, strict=True)
    )


def _cached(r: redis.Redis, days: str) -> float | None:
    """The bucket of an entity's cached window values (the first of C's packed doubles)."""
    c = cast(bytes | None, r.hget(days, "C"))
    return None if c is None else struct.unpack_from("<d", c)[0]


@pytest.mark.parametrize("seed", [1, 2])
def test_one_read_of_several_buckets_of_an_entity(settings: Settings, seed: int) -> None:
    rng = random.Random(seed)
    r = redis_client(redis_config(settings))
    store = RedisFeatureStore(r, Names(settings.topic_prefix), SPEC.retention_s)
    ents = (("card", "c"), ("terminal", "t"))
    truth: dict[tuple[str, str], dict[int, list[float]]] = {e: {} for e in ents}
    now, cached = 100 * P, {e: 100 * P for e in ents}
    checked = 0
    for _ in range(60):
        now += rng.randint(0, 5)
        inc = Increments()
        for _ in range(rng.randint(1, 4)):
            kind, name = e = rng.choice(ents)
            b = now - (rng.randint(0, 9 * P) if rng.random() < 0.2 else 0)
            amount = round(rng.lognormvariate(3, 1.5), 2) if kind == "card" else 0.0
            v = amount if kind == "card" else float(rng.random() < 0.3)
            inc.add(kind, name, b, 1, v, amount)
            vals = truth[e].setdefault(b, [0.0, 0.0, 0.0])
            vals[0], vals[1], vals[2] = vals[0] + 1, vals[1] + v, max(vals[2], amount)
        store.write(inc, {}, {}, 60, 60, P, WINDOWS_DAYS)
        # per entity: new buckets, then the one cached before this call (a cache hit in the
        # script's state as it read it), in one call; then the same call again
        qs = []
        for e in ents:
            at = [now - rng.randint(0, 30) for _ in range(rng.randint(1, 3))]
            pos = rng.randint(0, len(at))
            qs += [(*e, b) for b in [*at[:pos], cached[e], *at[pos:]]]
        for _ in range(2):
            _, got = store.read([], qs, P, WINDOWS_DAYS)
            for q in qs:
                want = window_sums(truth[(q[0], q[1])], q[2], SPANS)
                assert _close(got[q], want), (q, got[q], want)
                checked += 1
            for e in ents:  # each bucket other than the cached one is cached in turn
                order = dict.fromkeys(q[2] for q in qs if (q[0], q[1]) == e)
                misses = [b for b in order if b != cached[e]]
                cached[e] = misses[-1] if misses else cached[e]
    assert checked > 500
    r.close()


def test_queries_before_cache_from_are_summed_and_not_cached(settings: Settings) -> None:
    """A backfill's events each query a later bucket than the last: their window values are
    summed as any other's but not kept for a next query (``cache_from``); a query from that
    bucket on is kept, as before, and both read the same values."""
    r = redis_client(redis_config(settings))
    names = Names(settings.topic_prefix)
    store = RedisFeatureStore(r, names, SPEC.retention_s)
    truth: dict[int, list[float]] = {}
    inc = Increments()
    for b in range(100 * P, 103 * P, 5):
        inc.add("card", "bf", b, 1, 10.0 + b % 7, 10.0 + b % 7)
        truth[b] = [1.0, 10.0 + b % 7, 10.0 + b % 7]
    store.write(inc, {}, {}, 60, 60, P, WINDOWS_DAYS)
    days = names.entity_days("card", "bf")
    edge = {"card": 102 * P}
    for qb in (100 * P + 7, 101 * P + 3, 102 * P - 1):  # before the edge: not cached
        _, got = store.read([], [("card", "bf", qb)], P, WINDOWS_DAYS, edge)
        assert _close(got[("card", "bf", qb)], window_sums(truth, qb, SPANS))
        assert _cached(r, days) is None
    for qb in (102 * P, 102 * P + 9):  # from the edge on: cached, and served from it next
        for _ in range(2):
            _, got = store.read([], [("card", "bf", qb)], P, WINDOWS_DAYS, edge)
            assert _close(got[("card", "bf", qb)], window_sums(truth, qb, SPANS))
            assert _cached(r, days) == qb
    _, got = store.read([], [("card", "bf", 101 * P)], P, WINDOWS_DAYS, edge)
    assert _cached(r, days) == 102 * P + 9  # an older query leaves the cache
    assert _close(got[("card", "bf", 101 * P)], window_sums(truth, 101 * P, SPANS))
    r.close()


def test_a_write_a_day_behind_the_cached_query_drops_it(settings: Settings) -> None:
    """A write whose buckets all lie a day or more before the cached query's (a backfill's, a
    lagging producer's) drops the cached values instead of updating them; one with a bucket
    within the day updates them. Either way the next read equals the buckets' sums."""
    r = redis_client(redis_config(settings))
    names = Names(settings.topic_prefix)
    store = RedisFeatureStore(r, names, SPEC.retention_s)
    days = names.entity_days("card", "lag")
    truth: dict[int, list[float]] = {}
    qb = 200 * P + 5

    def write(*buckets: int) -> None:
        inc = Increments()
        for b in buckets:
            inc.add("card", "lag", b, 1, 3.0 + b % 5, 3.0 + b % 5)
            vals = truth.setdefault(b, [0.0, 0.0, 0.0])
            vals[0] += 1
            vals[1] += 3.0 + b % 5
            vals[2] = max(vals[2], 3.0 + b % 5)
        store.write(inc, {}, {}, 60, 60, P, WINDOWS_DAYS)

    def read() -> None:
        _, got = store.read([], [("card", "lag", qb)], P, WINDOWS_DAYS)
        assert _close(got[("card", "lag", qb)], window_sums(truth, qb, SPANS))

    write(qb - 3, qb - 2 * P)
    read()
    assert _cached(r, days) == qb
    write(qb - P + 1, qb - 20 * P)  # within the day: kept up to date
    assert _cached(r, days) == qb
    read()
    write(qb - P, qb - 9 * P)  # a day or more behind: dropped
    assert _cached(r, days) is None
    read()
    assert _cached(r, days) == qb
    r.close()


def test_full_days_are_kept_for_entities_with_a_week_of_data_or_more(settings: Settings) -> None:
    """``C`` keeps the full days' sums only where an entity's windows hold 8 days of data or
    more (160 bytes; else its query's window values alone, 80 bytes, as before session 36);
    either way the next query on the same day, after writes into its day and into a full day,
    reads the buckets' window sums."""
    r = redis_client(redis_config(settings))
    names = Names(settings.topic_prefix)
    store = RedisFeatureStore(r, names, SPEC.retention_s)
    truth: dict[str, dict[int, list[float]]] = {"few": {}, "many": {}}

    def write(card: str, *buckets: int) -> None:
        inc = Increments()
        for b in buckets:
            inc.add("card", card, b, 1, 2.5 + b % 3, 2.5 + b % 3)
            vals = truth[card].setdefault(b, [0.0, 0.0, 0.0])
            vals[0] += 1
            vals[1] += 2.5 + b % 3
            vals[2] = max(vals[2], 2.5 + b % 3)
        store.write(inc, {}, {}, 60, 60, P, WINDOWS_DAYS)

    qb = 300 * P + 3
    for card, days in (("few", 7), ("many", 8)):
        write(card, *range(qb - days * P, qb, 5))
    for step in range(3):  # a query, then a write into its day (and first into a full day)
        nw = len(WINDOWS_DAYS)
        for card, size in (("few", 8 + 24 * nw), ("many", 16 + 48 * nw)):
            q = ("card", card, qb + step)
            _, got = store.read([], [q], P, WINDOWS_DAYS)
            assert _close(got[q], window_sums(truth[card], qb + step, SPANS))
            assert len(cast(bytes, r.hget(names.entity_days("card", card), "C"))) == size
            write(card, qb + step, *([qb - 4 * P] if step == 0 else []))
    r.close()


def test_the_scorer_caches_live_queries_only(settings: Settings) -> None:
    """The scorer's edge: a transaction of ten days ago (a backfill's) leaves its card's and
    terminal's window values uncached, one of now caches both (the terminal's query is a label
    delay earlier than the card's, its edge too)."""
    from riverwatch.streams.records import Record
    from tests.support.scoring import scorer

    r = redis_client(redis_config(settings))
    sc = scorer(settings, r)
    topic = sc.names.topic("transactions")

    def score(card: str, at: float) -> None:
        tx = {"timestamp": at, "card_id": card, "terminal_id": f"t-{card}", "amount": 12.5}
        body = orjson.dumps({"event_id": f"e-{card}", **tx})
        (out,) = sc.process([Record(topic, 0, 0, card.encode(), body, None)])
        assert out.topic == sc.t_scores
        # the read that matters is the entity's next one: its state exists from now on
        (out,) = sc.process([Record(topic, 0, 1, card.encode(), body.replace(b"e-", b"f-"), None)])

    def cached(kind: str, entity: str) -> bool:
        return _cached(r, sc.names.entity_days(kind, entity)) is not None

    now = time.time()
    score("old", now - 10 * 86_400)
    assert not cached("card", "old") and not cached("terminal", "t-old")
    score("new", now)
    assert cached("card", "new") and cached("terminal", "t-new")
    r.close()
