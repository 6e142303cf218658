"""The fraud feature set, defined once for the stream scorer, synchronous scoring and training.

Per-entity history is kept as time buckets of event time (never the wall clock, so a replay or
the simulator's compressed time gives the same features as live traffic):

* a card's buckets hold ``[count, amount_sum]``;
* a terminal's buckets hold ``[count, fraud_count]``, where frauds are added when their label
  arrives, on the bucket of the *transaction*.

Card windows end at (and include) the current transaction's bucket. Terminal windows end
``delay`` before it, because labels younger than the label delay are not known yet at scoring
time (the Fraud Detection Handbook's delayed terminal-risk features).

>>> spec = FeatureSpec(bucket_s=3600, label_delay_days=7)
>>> card = {}
>>> apply_card(card, spec.bucket(0.0), 10.0)
>>> apply_card(card, spec.bucket(7200.0), 30.0)
>>> f = compute(spec, epoch=7200.0, amount=30.0, card=card, terminal={})
>>> f["card_n_1d"], f["card_mean_1d"], f["term_risk_7d"]
(2.0, 20.0, 0.0)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

WINDOWS_DAYS = (1, 7, 30)
DAY_S = 86_400

FEATURE_NAMES: tuple[str, ...] = (
    "amount",
    "hour",
    "is_weekend",
    "is_night",
    *(f"card_{stat}_{w}d" for w in WINDOWS_DAYS for stat in ("n", "mean")),
    *(f"card_ratio_{w}d" for w in WINDOWS_DAYS[1:]),
    *(f"term_{stat}_{w}d" for w in WINDOWS_DAYS for stat in ("n", "risk")),
)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}

# A bucket's values: card -> [count, amount_sum]; terminal -> [count, fraud_count].
Buckets = MutableMapping[int, list[float]]


@dataclass(frozen=True)
class FeatureSpec:
    """Bucket width and label delay: the two numbers every user of the features must share."""

    bucket_s: int = 3600
    label_delay_days: int = 7

    def __post_init__(self) -> None:
        if DAY_S % self.bucket_s:
            raise ValueError(f"bucket_s must divide a day (86400 s), got {self.bucket_s}")

    @property
    def per_day(self) -> int:
        """Buckets per day."""
        return DAY_S // self.bucket_s

    @property
    def delay_buckets(self) -> int:
        """The label delay in buckets."""
        return self.label_delay_days * self.per_day

    def bucket(self, epoch: float) -> int:
        """The bucket an event time falls in."""
        return math.floor(epoch / self.bucket_s)

    def oldest_needed(self, bucket: int) -> int:
        """Buckets older than this can never enter a window again (safe to prune)."""
        return bucket - self.delay_buckets - max(WINDOWS_DAYS) * self.per_day + 1

    @property
    def retention_s(self) -> int:
        """How long an entity's counters must live after its last update."""
        return (self.label_delay_days + max(WINDOWS_DAYS) + 1) * DAY_S


def apply_card(card: Buckets, bucket: int, amount: float) -> None:
    """Count one transaction of ``amount`` in a card's bucket."""
    vals = card.setdefault(bucket, [0.0, 0.0])
    vals[0] += 1.0
    vals[1] += amount


def apply_terminal(terminal: Buckets, bucket: int, frauds: float = 0.0, count: float = 1.0) -> None:
    """Count transactions and/or labelled frauds in a terminal's bucket."""
    vals = terminal.setdefault(bucket, [0.0, 0.0])
    vals[0] += count
    vals[1] += frauds


def window_sums(
    buckets: Mapping[int, list[float]], end: int, spans: tuple[int, ...]
) -> list[tuple[float, float]]:
    """Sums of both bucket values over ``(end - span, end]`` for each span, in one pass.

    Written by hand (not with numpy) because an entity holds a few dozen buckets: a Python
    loop beats building arrays at that size.
    """
    sums = [[0.0, 0.0] for _ in spans]
    for b, (v0, v1) in buckets.items():
        age = end - b
        if age < 0:
            continue
        for i, span in enumerate(spans):
            if age < span:
                sums[i][0] += v0
                sums[i][1] += v1
    return [(s[0], s[1]) for s in sums]


def calendar(epoch: float) -> tuple[float, float, float]:
    """Hour of day (UTC), weekend flag, night flag (00:00-05:59) of an event time."""
    dt = datetime.fromtimestamp(epoch, UTC)
    hour = dt.hour
    return float(hour), float(dt.weekday() >= 5), float(hour < 6)


def compute(
    spec: FeatureSpec,
    epoch: float,
    amount: float,
    card: Mapping[int, list[float]],
    terminal: Mapping[int, list[float]],
) -> dict[str, float]:
    """The feature row of one transaction, given its card's and terminal's buckets.

    ``card`` must already include this transaction (call :func:`apply_card` first), so the
    card windows count it, as the Handbook's do.
    """
    return dict(zip(FEATURE_NAMES, vector(spec, epoch, amount, card, terminal), strict=True))


def vector(
    spec: FeatureSpec,
    epoch: float,
    amount: float,
    card: Mapping[int, list[float]],
    terminal: Mapping[int, list[float]],
) -> list[float]:
    """:func:`compute` as a list in :data:`FEATURE_NAMES` order (the hot path uses this)."""
    b = spec.bucket(epoch)
    spans = tuple(w * spec.per_day for w in WINDOWS_DAYS)
    out = [amount, *calendar(epoch)]
    card_sums = window_sums(card, b, spans)
    for n, total in card_sums:
        out += [n, total / n if n else 0.0]
    for n, total in card_sums[1:]:
        # amount over the card's usual amount (the window's mean, this transaction included):
        # a compromised card's inflated amounts stand out against its own history.
        out.append(amount * n / total if total > 0 else 1.0)
    for n, frauds in window_sums(terminal, b - spec.delay_buckets, spans):
        out += [n, frauds / n if n else 0.0]
    return out


def step(
    spec: FeatureSpec,
    epoch: float,
    amount: float,
    card: Buckets,
    terminal: Buckets,
) -> list[float]:
    """Apply one transaction to its entities' buckets and return its feature vector.

    The one order of operations every user shares (stream, sync scoring, offline replay):
    count the transaction on its card, compute the features, then count it on its terminal.
    """
    b = spec.bucket(epoch)
    apply_card(card, b, amount)
    out = vector(spec, epoch, amount, card, terminal)
    apply_terminal(terminal, b)
    return out


def replay(spec: FeatureSpec, events: Iterable[tuple[Any, ...]]) -> dict[str, list[float]]:
    """Recompute every transaction's features offline from a history, in processing order.

    ``events`` are ``("tx", event_id, epoch, card_id, terminal_id, amount)`` and
    ``("label", event_id, label)`` tuples in the order the system processed them. A repeated
    transaction or label is ignored, as online. Gives the online features exactly: this is
    what backfills and the skew test use.

    >>> spec = FeatureSpec(3600, 0)
    >>> out = replay(spec, [("tx", "a", 0.0, "c", "t", 5.0), ("label", "a", 1),
    ...                     ("tx", "b", 60.0, "c", "t", 7.0)])
    >>> out["b"][FEATURE_INDEX["card_n_1d"]], out["b"][FEATURE_INDEX["term_risk_1d"]]
    (2.0, 1.0)
    """
    cards: dict[str, Buckets] = defaultdict(dict)
    terms: dict[str, Buckets] = defaultdict(dict)
    where: dict[str, tuple[str, int]] = {}
    labelled: set[str] = set()
    out: dict[str, list[float]] = {}
    for ev in events:
        if ev[0] == "tx":
            _, eid, epoch, card, terminal, amount = ev
            if eid in out:
                continue
            out[eid] = step(spec, epoch, amount, cards[card], terms[terminal])
            where[eid] = (terminal, spec.bucket(epoch))
        elif ev[0] == "label":
            _, eid, label = ev
            if eid in labelled or eid not in where:
                continue
            labelled.add(eid)
            if label:
                terminal, b = where[eid]
                apply_terminal(terms[terminal], b, frauds=1.0, count=0.0)
        else:
            raise ValueError(f"unknown history event {ev[0]!r}")
    return out
