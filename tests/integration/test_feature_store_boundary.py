"""The feature store's kept sums of a query's partly covered days (the read script's ``S:0``
and ``S:<window>`` fields in an entity's bucket hash: its own day's sums from the first bucket
to each, and each window's boundary day's from each bucket to the day's end): an entity queried
hour after hour over days of history, now and a label delay back, with late writes into kept
days and others after their sums were kept, late queries, pruned days and state migrated from
buckets, reads the same doubles as the read that sums every bucket (queries not kept:
``cache_from``) and the buckets' window sums. (A kept field not summed again after a write to
its day, or one read at the wrong bucket, fails here.)
"""

from __future__ import annotations

import random
import struct

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
NEVER = {"card": 10**12, "terminal": 10**12}  # no query kept: boundary days read by bucket
ENTS = (("card", "c"), ("terminal", "t"))
LATE = (("card", "cl"), ("terminal", "tl"))  # queried a label delay back only (as a terminal is)
Truth = dict[tuple[str, str], dict[int, list[float]]]


def _close(got: list[tuple[float, float, float]], want: list[tuple[float, float, float]]) -> bool:
    return all(
        g[0] == w[0] and abs(g[1] - w[1]) <= 1e-9 * max(1.0, w[1]) and g[2] == w[2]
        for g, w in zip(got, want, strict=True)
    )


def _write(store: RedisFeatureStore, truth: Truth, rng: random.Random, buckets: list[int],
           prune: dict[tuple[str, str], int] | None = None,
           ents: tuple[tuple[str, str], ...] = ENTS) -> None:  # fmt: skip
    inc = Increments()
    for b in buckets:
        for e in ents:
            amount = round(rng.lognormvariate(3, 1.5), 2) if e[0] == "card" else 0.0
            v = amount if e[0] == "card" else float(rng.random() < 0.3)
            inc.add(*e, b, 1, v, amount)
            vals = truth[e].setdefault(b, [0.0, 0.0, 0.0])
            vals[0], vals[1], vals[2] = vals[0] + 1, vals[1] + v, max(vals[2], amount)
    store.write(inc, {}, {}, 600, 600, P, WINDOWS_DAYS, prune)


def _kept(r: redis.Redis, names: Names, e: tuple[str, str], field: str) -> float | None:
    """The day whose sums ``field`` (``S:<i>``) keeps: the first of its doubles, or None."""
    c = r.hget(names.entity(*e), field)
    return None if c is None else struct.unpack_from("<d", c)[0]  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kept_boundary_sums_read_what_the_buckets_hold(settings: Settings, seed: int) -> None:
    rng = random.Random(seed)
    r = redis_client(redis_config(settings))
    names = Names(settings.topic_prefix)
    store = RedisFeatureStore(r, names, SPEC.retention_s)
    ents = ENTS + LATE
    truth: Truth = {e: {} for e in ents}

    def write(buckets: list[int]) -> None:
        _write(store, truth, rng, buckets, ents=ents)

    for day in range(100, 132):  # a month of history: most hours hold transactions
        write([b for b in range(day * P, day * P + P) if rng.random() < 0.8])
    now, checked, stale, late = 132 * P, 0, 0, 0
    for step in range(5 * P):  # five days, hour by hour
        now += 1
        write([now] * rng.randint(0, 2))
        if step % 5 == 4:  # a late transaction in a boundary day whose sums may be kept
            i = rng.randrange(len(WINDOWS_DAYS))
            day = now // P - WINDOWS_DAYS[i]
            stale += all(_kept(r, names, e, f"S:{i + 1}") == day for e in ENTS)
            write([day * P + rng.randrange(P)])
        if step % 5 == 2:  # a late one in a full day of a window of either query (now or a
            # label delay back), its first and last as often as any other, in one batch with one
            # of this hour (alone, it would drop the cached query: feature_scripts): the full
            # days' sums C keeps for the query's day are summed again after it
            k = rng.choice([1, max(WINDOWS_DAYS) - 1, rng.randint(1, max(WINDOWS_DAYS) - 1)])
            day = (now - rng.choice([0, 7 * P])) // P - k
            write([now, day * P + rng.randrange(P)])
        # now and a label delay back (a terminal's query: its own day complete, read from S:0),
        # in one call; and (LATE) a label delay back only, hour after hour, as the scorer
        # queries a terminal: its next query on the same day reads the full days' sums from C
        qs = [(*e, at) for e in ENTS for at in (now, now - 7 * P)]
        qs += [(*e, now - 7 * P) for e in LATE]
        if step % 7 == 6:  # a late query (a lagging producer's): its own boundary days
            qs += [(*e, now - rng.randint(P, 3 * P)) for e in ents]
            late += 1
        _, plain = store.read([], qs, P, WINDOWS_DAYS, NEVER)
        _, got = store.read([], qs, P, WINDOWS_DAYS)
        for q in qs:
            want = window_sums(truth[(q[0], q[1])], q[2], SPANS)
            assert got[q] == plain[q], (q, got[q], plain[q], want)  # the same doubles
            assert _close(got[q], want), (q, got[q], want)
            checked += 1
        if step == 3 * P:  # state from before day totals: migrated with the kept fields there
            assert _kept(r, names, ENTS[0], "S:3") is not None
            assert r.delete(*(names.entity_days(*e) for e in ents)) == 4
    # every window kept a boundary day: of the last queries now or a label delay back, or a day
    # before theirs (where the query's hour covers all of that day's data); and late writes hit
    # kept fields
    for e in ents:
        for i, w in enumerate(WINDOWS_DAYS, 1):
            kept = _kept(r, names, e, f"S:{i}") or 0
            assert now // P - 7 - w - 1 <= kept <= now // P - w, (e, i)
        assert _kept(r, names, e, "S:0")
    assert checked > 500 and late > 10 and stale > 10, (late, stale)
    r.close()


def test_pruning_days_drops_the_kept_sums(settings: Settings) -> None:
    """A write that deletes days (they can never enter a window again) deletes the kept
    boundary sums with them; the next read sums them again from what remains."""
    rng = random.Random(7)
    r = redis_client(redis_config(settings))
    names = Names(settings.topic_prefix)
    store = RedisFeatureStore(r, names, SPEC.retention_s)
    truth: Truth = {e: {} for e in ENTS}
    _write(store, truth, rng, list(range(100 * P, 131 * P)))
    qb = 130 * P + 3
    _, got = store.read([], [(*e, qb) for e in ENTS], P, WINDOWS_DAYS)
    assert all(_kept(r, names, e, "S:3") == 100 for e in ENTS)
    # the next day's first transaction prunes day 100 (a window reaching 131 * P never sees it)
    prune = {e: 101 for e in ENTS}
    _write(store, truth, rng, [131 * P], prune)
    assert all(_kept(r, names, e, f"S:{i}") is None for e in ENTS for i in (1, 2, 3))
    for e in ENTS:
        truth[e] = {b: v for b, v in truth[e].items() if b >= 101 * P}
    qb = 131 * P + 2
    _, got = store.read([], [(*e, qb) for e in ENTS], P, WINDOWS_DAYS)
    for e in ENTS:
        assert _close(got[(*e, qb)], window_sums(truth[e], qb, SPANS))
        assert _kept(r, names, e, "S:3") == 101
    r.close()
