"""The feature store's card maximums (issue 17) in Valkey: the read script's per-window maximum
equals the maximum of the buckets written (cached or not, across prunes), and state written
by the scripts before maximums existed still reads, its history as no maximum.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from riverwatch.context import Context
from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.features import FEATURE_INDEX, WINDOWS_DAYS, FeatureSpec, window_sums
from riverwatch.models.serving import ModelSet
from riverwatch.stores.features import Increments, RedisFeatureStore
from riverwatch.stores.registry import Registry
from riverwatch.stores.snapshots import SnapshotStore
from riverwatch.streams.records import Record
from riverwatch.streams.scorer import Scorer

pytestmark = pytest.mark.integration

SPEC = FeatureSpec(3600, 7)
P = SPEC.per_day
SPANS = tuple(w * P for w in WINDOWS_DAYS)
T0 = 1_767_225_600


def _close(got: list[tuple[float, float, float]], want: list[tuple[float, float, float]]) -> bool:
    return all(
        g[0] == w[0] and abs(g[1] - w[1]) <= 1e-9 * max(1.0, w[1]) and g[2] == w[2]
        for g, w in zip(got, want, strict=True)
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stored_maximums_equal_the_maximum_of_the_buckets(settings: Settings, seed: int) -> None:
    rng = random.Random(seed)
    r = redis_client(redis_config(settings))
    store = RedisFeatureStore(r, Names(settings.topic_prefix), SPEC.retention_s)
    truth: dict[str, dict[int, list[float]]] = {"a": {}, "b": {}}
    now = 100 * P
    checked = 0
    for _ in range(150):
        prev = now
        now += rng.randint(0, 6)
        inc = Increments()
        for _ in range(rng.randint(1, 5)):
            card = rng.choice("ab")
            b = now - (rng.randint(0, 9 * P) if rng.random() < 0.2 else 0)  # some late ones
            amount = round(rng.lognormvariate(3, 1.5), 2)
            inc.add("card", card, b, 1, amount, amount)
            vals = truth[card].setdefault(b, [0.0, 0.0, 0.0])
            vals[0] += 1
            vals[1] += amount
            vals[2] = max(vals[2], amount)
        prune = {("card", c): SPEC.prune_day(now) for c in "ab"}
        store.write(inc, {}, {}, 60, 60, P, WINDOWS_DAYS, prune=prune)
        for c in "ab":  # the store dropped the days before the prune day: so does the truth
            truth[c] = {b: v for b, v in truth[c].items() if b // P >= SPEC.prune_day(now)}
        # the last read's bucket first (the cache the write just updated), then an earlier
        # bucket, then the new one twice (the second read from the cache)
        qs = [("card", c, at) for c in "ab" for at in (prev, now - rng.randint(1, 30), now, now)]
        for q in qs:
            _, got = store.read([], [q], P, WINDOWS_DAYS)
            want = window_sums(truth[q[1]], q[2], SPANS)
            assert _close(got[q], want), (q, got[q], want)
            checked += any(m > 0 for _, _, m in want)
    assert checked > 400
    r.close()


def _old_state(r: object, names: Names, card: str, buckets: dict[int, list[float]], q: int) -> None:
    """A card's hashes as the scripts before maximums left them: n:/v: per bucket and per day,
    ok/lo/a:/z:, and the cached sums (q, c1..c6) of a read at bucket ``q``."""
    hk, dk = names.entity("card", card), names.entity_days("card", card)
    for b, (n, v) in buckets.items():
        r.hset(hk, mapping={f"n:{b}": repr(n), f"v:{b}": repr(v)})  # type: ignore[attr-defined]
    days: dict[int, list[float]] = {}
    for b, (n, v) in buckets.items():
        d = days.setdefault(b // P, [0.0, 0.0, P, -1])
        d[0] += n
        d[1] += v
        d[2], d[3] = min(d[2], b % P), max(d[3], b % P)
    state: dict[str, str] = {"ok": "1", "lo": str(min(days)), "q": str(q)}
    for d, (n, v, a, z) in days.items():
        state |= {f"n:{d}": repr(n), f"v:{d}": repr(v)}
        state |= {f"a:{d}": str(int(a)), f"z:{d}": str(int(z))}
    for i, (n, v, _) in enumerate(window_sums(buckets, q, SPANS)):
        state |= {f"c{2 * i + 1}": repr(n), f"c{2 * i + 2}": repr(v)}
    r.hset(dk, mapping=state)  # type: ignore[attr-defined]


def test_state_from_before_maximums_reads_as_no_maximum(settings: Settings, tmp_path: Path) -> None:
    r = redis_client(redis_config(settings))
    names = Names(settings.topic_prefix)
    store = RedisFeatureStore(r, names, SPEC.retention_s)
    q = 200 * P + 5
    old = {q - 30: [2.0, 900.0], q - 2: [1.0, 700.0], q: [1.0, 50.0]}
    _old_state(r, names, "old", old, q)
    # a read at the cached bucket (no maximums cached: recomputed) and at another one
    for at in (q, q - 1):
        _, got = store.read([], [("card", "old", at)], P, WINDOWS_DAYS)
        want = [(n, v, 0.0) for n, v, _ in window_sums(old, at, SPANS)]
        assert got[("card", "old", at)] == want
    # written by the new script: its maximums count, the old history's sums still do
    _old_state(r, names, "old2", old, q)  # again with its cache at q, for the write's sake
    inc = Increments()
    inc.add("card", "old2", q, 1, 30.0, 30.0)
    store.write(inc, {}, {}, 60, 60, P, WINDOWS_DAYS)
    _, got = store.read([], [("card", "old2", q)], P, WINDOWS_DAYS)
    now = dict(old) | {q: [2.0, 80.0]}
    assert got[("card", "old2", q)] == [(n, v, 30.0) for n, v, _ in window_sums(now, q, SPANS)]
    # the stream scores a transaction of such a card: no crash, its maximum is its own amount
    models = ModelSet(SnapshotStore(r, names), Registry(r, names, tmp_path), 1.0)
    scorer = Scorer(Context.from_settings(settings), store, models, "test:0")
    _old_state(r, names, "old3", old, q)
    body = {"event_id": "e1", "timestamp": q * 3600 + 60, "card_id": "old3",
            "terminal_id": "t", "amount": 20.0}  # fmt: skip
    scorer.process([Record("transactions", 0, 0, b"old3", orjson.dumps(body), None)])
    x = orjson.loads(r.get(names.feature_row("e1")))["x"]
    assert x[FEATURE_INDEX["card_n_1d"]] == 3.0  # the old history counts (2 in the day) ...
    assert x[FEATURE_INDEX["card_max_1d"]] == x[FEATURE_INDEX["card_max_7d"]] == 20.0  # ... max
    assert x[FEATURE_INDEX["card_amount_over_max_7d"]] == 1.0
    r.close()
