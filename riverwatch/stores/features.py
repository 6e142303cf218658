"""The online feature store: per-entity time-bucketed counters in Redis, one pipeline per batch.

An entity (card or terminal) is two hashes. ``Names.entity`` holds its buckets: field
``n:<bucket>`` counts transactions and ``v:<bucket>`` holds the second value (a card's amount
sum, a terminal's fraud count); a card also keeps ``m:<bucket>``, its largest amount there.
``Names.entity_days`` holds the same counters summed per day, one field per day (``d:<day>``,
day = ``bucket // per_day``: count, value, the day's maximum, and its first and last bucket
holding data, as five packed doubles, and a sixth with a bit per bucket holding data, by which
a read of part of the day names only those: stores.feature_state), plus ``ok`` (``2``: the day
totals are complete, packed),
``lo`` (no day before it holds data) and ``C`` (the entity's last query's window values and,
with 8 days of data or more, the sums of its full days, which its next query on that day
reuses: stores.feature_state).

Maximums are not additive: the write script keeps the larger of the stored and the new value
(HGET then HSET, atomic inside the script), the read script takes the maximum, not the sum,
over the same fields. State written before maximums existed has no ``m:`` fields: a missing
one reads as no amount (0.0), so such a card's maximum covers only what was written since.

Reads never bring buckets back to Python: a script sums the windows each transaction needs
where the data lives, from at most ``max(windows) + 1`` day totals and the buckets of the
four days a window boundary cuts (the current day, and the days 1, 7 and 30 before it; a busy
entity's kept sums of them, stores.feature_read), so what a read touches is bounded whatever
an entity's history (its cost still grows with it: README, issue 15). Every sum is a plain
addition of stored values (no running total that subtracts what leaves a window), so the
features are those of summing the buckets (models.features.window_sums) up to the order of
float additions.

Increments are commutative (HINCRBYFLOAT), so any worker may update any entity, and the
learner adds late frauds to old buckets the same way (one script, both hashes). A scored
event's own score key doubles as its "already applied" marker: the score and the counter
increments are written in one atomic script, so a replayed event is never counted twice.

State written before day totals existed (only ``Names.entity``) is migrated on its first read
or write: the script rebuilds the day totals from the buckets, once, atomically; day totals
stored a field per value (``n:<day>``, ``v:<day>``, ``m:<day>``, ``a:<day>``, ``z:<day>``,
``ok`` = ``1``: before session 27) are packed the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import orjson
import redis

from riverwatch.core.names import Names
from riverwatch.stores.feature_scripts import READ, WRITE

Buckets = dict[int, list[float]]
_SLOT = {110: 0, 109: 2}  # a field's first byte (n, m) -> its place in a bucket's values
_ALWAYS = -(2**53)  # a bucket before every other (Lua numbers are doubles)


def parse_hash(flat: list[bytes], prune_before: int | None = None) -> tuple[Buckets, list[bytes]]:
    """Buckets from a flat HGETALL reply ``[field, value, ...]`` (``[count, value, max]``),
    plus fields older than ``prune_before`` (to delete).

    >>> parse_hash([b"n:5", b"2", b"v:5", b"30.5", b"m:5", b"20", b"n:1", b"1"], prune_before=3)
    ({5: [2.0, 30.5, 20.0]}, [b'n:1'])
    """
    out: Buckets = {}
    stale: list[bytes] = []
    it = iter(flat)
    for f, v in zip(it, it, strict=True):
        bucket = int(f[2:])
        if prune_before is not None and bucket < prune_before:
            stale.append(f)
            continue
        vals = out.get(bucket)
        if vals is None:
            vals = out[bucket] = [0.0, 0.0, 0.0]
        vals[_SLOT.get(f[0], 1)] = float(v)  # n: the count, m: the maximum, else the value
    return out, stale


@dataclass
class Increments:
    """Counter changes of one batch, summed per entity and bucket before they are written."""

    card: dict[str, dict[int, list[float]]] = field(default_factory=lambda: defaultdict(dict))
    terminal: dict[str, dict[int, list[float]]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, kind: str, entity: str, bucket: int, n: float, v: float, m: float = 0.0) -> None:
        """Add ``n`` to the count and ``v`` to the second value of one bucket, and raise its
        maximum to ``m`` (a card's amount; 0.0 keeps none)."""
        vals = getattr(self, kind)[entity].setdefault(bucket, [0.0, 0.0, 0.0])
        vals[0] += n
        vals[1] += v
        if m > vals[2]:
            vals[2] = m


# One query: (kind, entity, bucket) -> the (count, value sum, value max) of each window
# ending there (models.features.Sums).
Query = tuple[str, str, int]
Sums = list[tuple[float, float, float]]


def _doubles(packed: bytes, n: int) -> np.ndarray:
    """The ``n`` little-endian doubles of :data:`READ`'s reply.

    >>> _doubles(bytes(8) + b"\\x00" * 6 + b"\\xf0\\x3f", 2).tolist()
    [0.0, 1.0]
    """
    if len(packed) != 8 * n:  # a script of another layout answered: never read it as features
        raise RuntimeError(f"the read script returned {len(packed)} bytes for {n} values")
    return np.frombuffer(packed, dtype="<f8")


class WindowSums(Mapping[Query, Sums]):
    """The window sums of a read: per query, ``(count, value sum, value max)`` per window
    (a Mapping, as one event's features read them), and all of them as one array
    (:attr:`array`, ``[query, window, value]``; :attr:`index`: a query's row), for the
    batch's vectorized features (models.features_batch)."""

    def __init__(self, index: dict[Query, int], values: np.ndarray, windows: int):
        self.index = index
        self.array = values.reshape(len(index), windows, 3)
        self._rows: list[list[list[float]]] | None = None

    def __getitem__(self, q: Query) -> Sums:
        if self._rows is None:  # one conversion for the batch: ~0.1 us a number per element
            self._rows = self.array.tolist()
        return [(n, v, m) for n, v, m in self._rows[self.index[q]]]

    def __iter__(self) -> Iterator[Query]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


class RedisFeatureStore:
    """Reads window sums and writes entity counters, scores and feature rows, in one round
    trip each."""

    def __init__(self, client: redis.Redis, names: Names, retention_s: int):
        self.r = client
        self.names = names
        self.retention_s = retention_s
        self._read = client.register_script(READ)
        self._write = client.register_script(WRITE)
        # The key bases the scripts build keys from (feature_read: score, feature row, then a
        # card's entity and day hash, then a terminal's), as Names names them.
        n = names
        ents = [f(kind, "") for kind in ("card", "terminal") for f in (n.entity, n.entity_days)]
        self.bases = orjson.dumps([n.score(""), n.feature_row(""), *ents])

    def read(
        self,
        event_ids: list[str],
        queries: Iterable[Query],
        per_day: int,
        windows: tuple[int, ...],
        cache_from: Mapping[str, int] | None = None,
    ) -> tuple[list[bytes | None], WindowSums]:
        """Existing scores of ``event_ids`` and, per query ``(kind, entity, bucket)``, the stored
        (count sum, value sum, value maximum) over ``(bucket - w * per_day, bucket]`` for each
        ``w`` of ``windows`` (days, ascending). The values of an entity's query are kept for
        the next query at its bucket when that is ``cache_from[kind]`` or later (default:
        always)."""
        per: dict[tuple[str, str], dict[int, None]] = {}
        for kind, entity, qb in queries:
            per.setdefault((kind, entity), {})[qb] = None
        # the queries as one flat JSON argument (see READ): redis-py spends ~1 us of Python per
        # argument; per entity: its id, a card or not (cards keep maximums), the first bucket
        # cached, its number of buckets, the buckets. The script builds the keys (feature_read).
        flat: list[int | str] = []
        edge = cache_from or {}
        for (kind, entity), qbs in per.items():
            flat += (entity, int(kind == "card"), edge.get(kind, _ALWAYS), len(qbs), *qbs)
        eids, qs = orjson.dumps(event_ids), orjson.dumps(flat)
        res = self._read(args=[per_day, orjson.dumps(windows), self.bases, eids, qs])
        n = len(event_ids)
        index: dict[Query, int] = {}
        for (kind, entity), qbs in per.items():
            for qb in qbs:
                index[(kind, entity, qb)] = len(index)
        values = _doubles(res[n], 3 * len(index) * len(windows))
        return res[:n], WindowSums(index, values, len(windows))

    def _entities(self, inc: Increments, prune: dict[tuple[str, str], int]) -> bytes:
        """The JSON entity argument of :data:`WRITE`: per entity its buckets' increments; the
        script names the fields and sums the days."""
        # One JSON argument, flat (see WRITE): redis-py spends microseconds of Python per
        # argument. Values travel as strings: Lua numbers would lose digits (%.14g); counts
        # are whole numbers, exact either way.
        ents: list[str | int | float] = []
        prune = dict(prune)
        for kind in ("card", "terminal"):
            card = int(kind == "card")
            for entity, buckets in getattr(inc, kind).items():
                ents += (entity, card, len(buckets))
                for b, (n, v, m) in buckets.items():
                    ents += (b, n, repr(v) if v else 0, repr(m) if m > 0 else 0)
                pd = prune.pop((kind, entity), None)
                ents += (0,) if pd is None else (1, pd)
        for (kind, entity), pd in prune.items():  # entities read but not incremented
            ents += (entity, int(kind == "card"), 0, 1, pd)
        return orjson.dumps(ents)

    def write(
        self,
        inc: Increments,
        scores: dict[str, bytes],
        rows: dict[str, bytes],
        score_ttl_s: int,
        row_ttl_s: int,
        per_day: int,
        windows: tuple[int, ...],
        prune: dict[tuple[str, str], int] | None = None,
        stats: dict[str, dict[str, float]] | None = None,
        stats_ttl_s: int = 3600,
        client: redis.client.Pipeline | None = None,
    ) -> None:
        """Apply increments, store scores and feature rows, delete the days before
        ``prune[(kind, entity)]`` (they can never enter a window again), and add to the
        ``stats`` hashes (key -> field -> increment; for dashboards): one atomic call.

        With ``client`` (a pipeline), the call is queued there instead (the learner's MULTI).
        """
        blob = self._entities(inc, prune or {})
        # the scores, then the rows, each as its event ids (the script builds the keys) and
        # the values (no tag per value: redis-py spends ~0.3 us of Python per argument)
        sets: list[bytes | str | int | float] = [orjson.dumps(list(scores)), *scores.values()]
        sets += [orjson.dumps(list(rows)), *rows.values()]
        keys: list[str] = []
        st: list[bytes | str | int | float] = [len(stats or {})]
        for key, fields in (stats or {}).items():
            keys.append(key)
            st += [stats_ttl_s, len(fields)]
            for f, v in fields.items():
                st += [f, v]
        args: list[bytes | str | int | float] = [per_day, orjson.dumps(windows), self.bases]
        args += [self.retention_s, score_ttl_s, row_ttl_s, blob]
        args += [*sets, *st]
        self._write(keys=keys, args=args, client=client)

    def get_rows(self, event_ids: list[str]) -> list[bytes | None]:
        """The stored feature rows of ``event_ids`` (None where unknown or expired)."""
        if not event_ids:
            return []
        rows = self.r.mget([self.names.feature_row(e) for e in event_ids])
        return [v.encode() if isinstance(v, str) else v for v in rows]
