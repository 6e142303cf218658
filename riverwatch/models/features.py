"""The fraud feature set, defined once for the stream scorer, synchronous scoring and training.

Per-entity history is kept as time buckets of event time (never the wall clock, so a replay or
the simulator's compressed time gives the same features as live traffic):

* a card's buckets hold ``[count, amount_sum, amount_max]``;
* a terminal's buckets hold ``[count, fraud_count]``, where frauds are added when their label
  arrives, on the bucket of the *transaction*.

Numerically safe by construction: an amount counts at most :data:`AMOUNT_CAP` (two amounts
near the float maximum would overflow a card's sums to infinity, and its mean and ratio to
NaN), and every feature is clipped to ``[-FEATURE_CAP, FEATURE_CAP]`` with NaN as 0.0, a last
guard for counters already stored.

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

After the built-in :data:`FEATURE_NAMES` come the producer's ``attributes`` a deployment names
(``RIVERWATCH_FEATURE_ATTRIBUTES``), one ``attr_<name>`` column each: see
:class:`riverwatch.models.feature_set.FeatureSet`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

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
    # issue 17 (last: older columns keep their places): the card's largest amounts, amount/7d's
    *(f"card_max_{w}d" for w in WINDOWS_DAYS[:2]),
    "card_amount_over_max_7d",
)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}

# A bucket's values: card -> [count, amount_sum, amount_max]; terminal -> [count, fraud_count].
Buckets = MutableMapping[int, list[float]]
# (count, value sum, value max: 0.0 if none) per window of WINDOWS_DAYS, as window_sums gives.
Sums = list[tuple[float, float, float]]


# 1000x the validator's default bound on amounts (RIVERWATCH_MAX_AMOUNT, 1e9): a card's sums
# stay far from float overflow (~1.8e308) however many transactions a window holds, and the
# online scaler's squares (~1e30 at most) stay finite too.
AMOUNT_CAP = 1e12
FEATURE_CAP = 1e15


def safe_amount(amount: float) -> float:
    """The amount as features count it: clipped to ``[0, AMOUNT_CAP]``, NaN as 0.0.

    >>> safe_amount(12.5), safe_amount(1e308), safe_amount(float("nan")), safe_amount(-3.0)
    (12.5, 1000000000000.0, 0.0, 0.0)
    """
    if 0.0 <= amount <= AMOUNT_CAP:
        return amount
    return AMOUNT_CAP if amount > AMOUNT_CAP else 0.0  # NaN fails every comparison


def finite(values: list[float]) -> list[float]:
    """Every value clipped to ``[-FEATURE_CAP, FEATURE_CAP]``, NaN as 0.0.

    >>> finite([1.5, float("inf"), float("-inf"), float("nan")])
    [1.5, 1000000000000000.0, -1000000000000000.0, 0.0]
    """
    cap = FEATURE_CAP
    return [v if -cap <= v <= cap else (cap if v > cap else -cap if v < -cap else 0.0)
            for v in values]  # fmt: skip


@dataclass(frozen=True)
class FeatureSpec:
    """Bucket width and label delay: the two numbers every user of the features must share."""

    bucket_s: int = 3600
    label_delay_days: int = 7

    def __post_init__(self) -> None:
        if DAY_S % self.bucket_s:
            raise ValueError(f"bucket_s must divide a day (86400 s), got {self.bucket_s}")

    @cached_property  # cached (frozen): the hot path asks several times per event
    def per_day(self) -> int:
        """Buckets per day."""
        return DAY_S // self.bucket_s

    @cached_property
    def delay_buckets(self) -> int:
        """The label delay in buckets."""
        return self.label_delay_days * self.per_day

    def bucket(self, epoch: float) -> int:
        """The bucket an event time falls in."""
        return math.floor(epoch / self.bucket_s)

    def oldest_needed(self, bucket: int) -> int:
        """Buckets older than this can never enter a window again (safe to prune)."""
        return bucket - self.delay_buckets - max(WINDOWS_DAYS) * self.per_day + 1

    def prune_day(self, bucket: int) -> int:
        """Days before this one (``bucket // per_day``) hold only buckets a window reaching
        ``bucket`` or later can never see: the feature store deletes them whole."""
        return self.oldest_needed(bucket) // self.per_day

    @property
    def full_days(self) -> int:
        """Event days from an entity's first transaction until every one of its windows can
        be full: the longest window, ending a label delay back for the terminals (37 days at
        the defaults). Before that a feature grows with time alone (``term_n_30d`` is still
        filling from day 30 to 37), which a monitor would take for drift."""
        return self.label_delay_days + max(WINDOWS_DAYS)

    @property
    def retention_s(self) -> int:
        """How long an entity's counters must live after its last update."""
        return (self.label_delay_days + max(WINDOWS_DAYS) + 1) * DAY_S


def apply_card(card: Buckets, bucket: int, amount: float) -> None:
    """Count one transaction of ``amount`` in a card's bucket (and keep its largest amount)."""
    vals = card.setdefault(bucket, [0.0, 0.0, 0.0])
    vals[0] += 1.0
    vals[1] += amount
    vals[2] = max(vals[2], amount)


def apply_terminal(terminal: Buckets, bucket: int, frauds: float = 0.0, count: float = 1.0) -> None:
    """Count transactions and/or labelled frauds in a terminal's bucket."""
    vals = terminal.setdefault(bucket, [0.0, 0.0])
    vals[0] += count
    vals[1] += frauds


def window_sums(buckets: Mapping[int, list[float]], end: int, spans: tuple[int, ...]) -> Sums:
    """Sums of the first two bucket values and the maximum of the third (0.0 if none) over
    ``(end - span, end]`` for each span, in one pass.

    Written by hand (not with numpy) because an entity holds a few dozen buckets: a Python
    loop beats building arrays at that size.
    """
    sums = [[0.0, 0.0, 0.0] for _ in spans]
    for b, vals in buckets.items():
        age = end - b
        if age < 0:
            continue
        v0, v1, v2 = vals[0], vals[1], (vals[2] if len(vals) > 2 else 0.0)
        for i, span in enumerate(spans):
            if age < span:
                s = sums[i]
                s[0] += v0
                s[1] += v1
                if v2 > s[2]:
                    s[2] = v2
    return [(s[0], s[1], s[2]) for s in sums]


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
    card_base: Sums | None = None,
    term_base: Sums | None = None,
) -> list[float]:
    """:func:`compute` as a list in :data:`FEATURE_NAMES` order (the hot path uses this).

    ``card_base`` and ``term_base`` are window sums of buckets held elsewhere (the feature
    store's, as of before this batch: stores.features), added to those of ``card`` and
    ``terminal`` (this batch's own increments). Always finite (:func:`finite`), whatever the
    buckets hold.
    """
    amount = safe_amount(amount)
    b = spec.bucket(epoch)
    spans = tuple(w * spec.per_day for w in WINDOWS_DAYS)
    out = [amount, *calendar(epoch)]
    card_sums = _plus(card_base, window_sums(card, b, spans))
    for n, total, _ in card_sums:
        out += [n, total / n if n else 0.0]
    for n, total, _ in card_sums[1:]:
        # amount over the card's usual amount (the window's mean, this transaction included):
        # a compromised card's inflated amounts stand out against its own history.
        out.append(amount * n / total if total > 0 else 1.0)
    if term_base is None or terminal:
        term_sums = _plus(term_base, window_sums(terminal, b - spec.delay_buckets, spans))
    else:  # nothing of this batch on the terminal yet: the stored sums alone
        term_sums = term_base
    for n, frauds, _ in term_sums:
        out += [n, frauds / n if n else 0.0]
    # the card's largest amount of 1 and 7 days and the amount over the latter (1.0 when 0)
    out += [card_sums[0][2], (top7 := card_sums[1][2]), amount / top7 if top7 > 0 else 1.0]
    return finite(out)


def _plus(base: Sums | None, sums: Sums) -> Sums:
    """Stored window sums plus a batch's own (maximums: the larger)."""
    if base is None:
        return sums
    return [(bn + n, bv + v, bm if bm > m else m)
            for (bn, bv, bm), (n, v, m) in zip(base, sums, strict=True)]  # fmt: skip


def step(
    spec: FeatureSpec,
    epoch: float,
    amount: float,
    card: Buckets,
    terminal: Buckets,
    card_base: Sums | None = None,
    term_base: Sums | None = None,
) -> list[float]:
    """Apply one transaction to its entities' buckets and return its feature vector.

    The one order of operations every user shares (stream, sync scoring, offline replay):
    count the transaction on its card, compute the features, then count it on its terminal.
    The card counts :func:`safe_amount` (so must the counters a caller stores). The bases are
    window sums of stored buckets (see :func:`vector`): the stream passes the feature
    store's, for the windows ending at this transaction's bucket and ``delay_buckets`` before.
    """
    b = spec.bucket(epoch)
    apply_card(card, b, safe_amount(amount))
    out = vector(spec, epoch, amount, card, terminal, card_base, term_base)
    apply_terminal(terminal, b)
    return out
