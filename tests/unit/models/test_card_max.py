"""The card's recent maximum amount (issue 17), pure: its values on a small history, a card
without history, and the stream's split (stored window maximums plus the batch's own, with the
store's increments) equal to the offline replay."""

from __future__ import annotations

import random
from collections import defaultdict

from riverwatch.models.feature_set import FeatureSet
from riverwatch.models.features import (
    FEATURE_INDEX,
    FEATURE_NAMES,
    WINDOWS_DAYS,
    FeatureSpec,
    safe_amount,
    window_sums,
)
from riverwatch.models.features_replay import replay
from riverwatch.stores.features import Increments

SPEC = FeatureSpec(3600, 7)
H, D = 3600.0, 86_400.0
MAX = ("card_max_1d", "card_max_7d", "card_amount_over_max_7d")


def _max(x: list[float]) -> tuple[float, ...]:
    return tuple(x[FEATURE_INDEX[n]] for n in MAX)


def test_the_maximums_of_a_small_history() -> None:
    out = replay(SPEC, [
        ("tx", "a", 0.0, "c", "t", 100.0),
        ("tx", "b", 2 * H, "c", "t", 30.0),
        ("tx", "c", 3 * D, "c", "t", 50.0),  # day 0 has left the 1-day window
        ("tx", "d", 8 * D, "c", "t", 10.0),  # and the 7-day one
        ("tx", "e", 8 * D + H, "c2", "t", 80.0),  # another card: its own history only
    ])  # fmt: skip
    assert _max(out["a"]) == (100.0, 100.0, 1.0)  # no history: its own amount, ratio 1
    assert _max(out["b"]) == (100.0, 100.0, 0.3)
    assert _max(out["c"]) == (50.0, 100.0, 0.5)
    assert _max(out["d"]) == (10.0, 50.0, 0.2)
    assert _max(out["e"]) == (80.0, 80.0, 1.0)
    assert FEATURE_NAMES[-3:] == MAX  # appended: the older columns keep their places


def test_a_zero_or_capped_amount_keeps_the_features_finite() -> None:
    out = replay(SPEC, [("tx", "z", 0.0, "c", "t", 0.0), ("tx", "n", 60.0, "c2", "t", -5.0),
                        ("tx", "big", 120.0, "c3", "t", 1e300)])  # fmt: skip
    assert _max(out["z"]) == (0.0, 0.0, 1.0)  # max 0: the ratio is guarded, as card_ratio's
    assert _max(out["n"]) == (0.0, 0.0, 1.0)  # a negative amount counts as 0 (safe_amount)
    assert _max(out["big"]) == (1e12, 1e12, 1.0)  # capped at AMOUNT_CAP


def test_window_sums_keep_the_maximum_of_the_third_value() -> None:
    b = {0: [1.0, 5.0, 5.0], 30: [2.0, 9.0, 7.0], 47: [1.0, 0.0]}  # a terminal's: no maximum
    assert window_sums(b, 47, (24, 48)) == [(3.0, 9.0, 7.0), (4.0, 14.0, 7.0)]
    assert window_sums({}, 47, (24,)) == [(0.0, 0.0, 0.0)]


def test_the_streams_split_with_the_stores_increments_equals_the_offline_replay() -> None:
    """As streams.scorer does it: per batch, the windows of what earlier batches stored (here a
    dict kept by the store's Increments) plus the batch's own buckets."""
    rng = random.Random(7)
    fs = FeatureSet()
    stored: dict[str, dict[int, list[float]]] = defaultdict(dict)
    spans = tuple(w * SPEC.per_day for w in WINDOWS_DAYS)
    history: list[tuple[object, ...]] = []
    online: dict[str, list[float]] = {}
    t = 0.0
    for _ in range(60):
        inc = Increments()
        cards: dict[str, dict[int, list[float]]] = defaultdict(dict)
        for _ in range(rng.randint(1, 8)):
            t += rng.expovariate(1 / (3 * H))
            eid, card = f"e{len(history)}", f"c{rng.randint(0, 2)}"
            amount = round(rng.lognormvariate(3, 1.5), 2)
            history.append(("tx", eid, t, card, "t", amount))
            b = SPEC.bucket(t)
            base = window_sums(stored[card], b, spans)
            online[eid], _ = fs.step(SPEC, t, amount, {}, cards[card], {}, base, None)
            inc.add("card", card, b, 1, safe_amount(amount), safe_amount(amount))
        for card, buckets in inc.card.items():  # what the write script keeps
            for b, (n, v, m) in buckets.items():
                vals = stored[card].setdefault(b, [0.0, 0.0, 0.0])
                vals[0] += n
                vals[1] += v
                vals[2] = max(vals[2], m)
    offline = replay(SPEC, history)
    assert offline.keys() == online.keys()
    for eid, x in offline.items():
        for name in (*MAX, "card_n_7d", "card_mean_7d"):
            i = FEATURE_INDEX[name]
            assert abs(online[eid][i] - x[i]) <= 1e-9 * max(1.0, abs(x[i])), (eid, name)
    assert len({_max(x)[1] for x in offline.values()}) > 20  # the maximum did move
