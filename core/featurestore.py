"""The online feature store: per-entity time-bucketed counters in Redis, one pipeline per batch.

An entity (card or terminal) is one hash: field ``n:<bucket>`` counts transactions and
``v:<bucket>`` holds the second value (a card's amount sum, a terminal's fraud count).
Increments are commutative (HINCRBY/HINCRBYFLOAT), so any worker may update any entity.
A scored event's own score key doubles as its "already applied" marker: the score and the
counter increments are written in one MULTI/EXEC, so a replayed event is never counted twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from core.names import Names

Buckets = dict[int, list[float]]


def parse_hash(raw: dict[bytes, bytes], prune_before: int | None = None) -> tuple[Buckets, list[bytes]]:
    """Buckets from a Redis hash, plus the fields older than ``prune_before`` (to delete)."""
    out: Buckets = {}
    stale: list[bytes] = []
    for f, v in raw.items():
        kind, _, b = f.partition(b":")
        bucket = int(b)
        if prune_before is not None and bucket < prune_before:
            stale.append(f)
            continue
        vals = out.setdefault(bucket, [0.0, 0.0])
        vals[0 if kind == b"n" else 1] = float(v)
    return out, stale


@dataclass
class Increments:
    """Counter changes of one batch, summed per entity and bucket before they are written."""

    card: dict[str, dict[int, list[float]]] = field(default_factory=lambda: defaultdict(dict))
    terminal: dict[str, dict[int, list[float]]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, kind: str, entity: str, bucket: int, n: float, v: float) -> None:
        """Add ``n`` to the count and ``v`` to the second value of one bucket."""
        vals = getattr(self, kind)[entity].setdefault(bucket, [0.0, 0.0])
        vals[0] += n
        vals[1] += v


class RedisFeatureStore:
    """Reads and writes entity buckets, scores and feature rows in one round trip each."""

    def __init__(self, client: redis.Redis, names: Names, retention_s: int):
        self.r = client
        self.names = names
        self.retention_s = retention_s

    def read(
        self,
        event_ids: list[str],
        cards: Iterable[str],
        terminals: Iterable[str],
        prune_before: dict[tuple[str, str], int] | None = None,
    ) -> tuple[list[bytes | None], dict[str, Buckets], dict[str, Buckets], dict[str, list[bytes]]]:
        """Existing scores of ``event_ids`` and the buckets of each card and terminal.

        Returns (scores, card_buckets, terminal_buckets, stale) where ``stale`` maps an entity
        key to the fields older than ``prune_before[(kind, id)]``, for :meth:`write` to delete.
        """
        cards, terminals = list(cards), list(terminals)
        p = self.r.pipeline(transaction=False)
        for eid in event_ids:
            p.get(self.names.score(eid))
        for c in cards:
            p.hgetall(self.names.entity("card", c))
        for t in terminals:
            p.hgetall(self.names.entity("terminal", t))
        res = p.execute()
        scores = res[: len(event_ids)]
        prune_before = prune_before or {}
        stale: dict[str, list[bytes]] = {}
        out: list[dict[str, Buckets]] = [{}, {}]
        pos = len(event_ids)
        for slot, (kind, ids) in enumerate((("card", cards), ("terminal", terminals))):
            for eid in ids:
                buckets, old = parse_hash(res[pos], prune_before.get((kind, eid)))
                out[slot][eid] = buckets
                if old:
                    stale[self.names.entity(kind, eid)] = old
                pos += 1
        return scores, out[0], out[1], stale

    def write(
        self,
        inc: Increments,
        scores: dict[str, bytes],
        rows: dict[str, bytes],
        score_ttl_s: int,
        row_ttl_s: int,
        stale: dict[str, list[bytes]] | None = None,
    ) -> None:
        """Apply increments, store scores and feature rows, prune stale fields: one MULTI/EXEC."""
        p = self.r.pipeline(transaction=True)
        for kind in ("card", "terminal"):
            for entity, buckets in getattr(inc, kind).items():
                key = self.names.entity(kind, entity)
                for b, (n, v) in buckets.items():
                    if n:
                        p.hincrby(key, f"n:{b}", int(n))
                    if v:
                        p.hincrbyfloat(key, f"v:{b}", v)
                p.expire(key, self.retention_s)
        for key, fields in (stale or {}).items():
            p.hdel(key, *fields)
        for eid, blob in scores.items():
            p.set(self.names.score(eid), blob, ex=score_ttl_s)
        for eid, blob in rows.items():
            p.set(self.names.feature_row(eid), blob, ex=row_ttl_s)
        p.execute()

    def get_rows(self, event_ids: list[str]) -> list[bytes | None]:
        """The stored feature rows of ``event_ids`` (None where unknown or expired)."""
        if not event_ids:
            return []
        return list(self.r.mget([self.names.feature_row(e) for e in event_ids]))
