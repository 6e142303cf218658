"""Property tests of the feature arithmetic (pure, no I/O)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from riverwatch.models.features import (
    FEATURE_INDEX,
    FEATURE_NAMES,
    FeatureSpec,
    apply_card,
    step,
    window_sums,
)
from riverwatch.models.features_replay import replay
from riverwatch.stores.features import parse_hash

buckets = st.dictionaries(
    st.integers(-2000, 2000),
    st.tuples(
        st.integers(0, 50).map(float), st.floats(0, 1e4, allow_nan=False), st.floats(0, 1e4)
    ).map(list),
    max_size=40,
)


@given(buckets, st.integers(-2000, 2000), st.lists(st.integers(1, 1000), min_size=1, max_size=4))
def test_window_sums_equal_brute_force(b: dict, end: int, spans: list[int]) -> None:
    got = window_sums(b, end, tuple(spans))
    for (n, v, m), span in zip(got, spans, strict=True):
        inside = [vals for k, vals in b.items() if end - span < k <= end]
        assert n == sum(x[0] for x in inside)
        assert abs(v - sum(x[1] for x in inside)) <= 1e-9 * max(1.0, abs(v))
        assert m == max((x[2] for x in inside), default=0.0)


@given(st.lists(st.tuples(st.floats(0, 90 * 86400), st.floats(0, 5000)), min_size=1, max_size=30))
def test_card_counters_commute(txs: list[tuple[float, float]]) -> None:
    """Increments in any order give the same buckets (any worker may apply any event)."""
    spec = FeatureSpec()
    a: dict = {}
    b: dict = {}
    for epoch, amount in txs:
        apply_card(a, spec.bucket(epoch), amount)
    shuffled = txs[:]
    random.Random(0).shuffle(shuffled)
    for epoch, amount in shuffled:
        apply_card(b, spec.bucket(epoch), amount)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k][0] == b[k][0] and abs(a[k][1] - b[k][1]) <= 1e-9 * max(1.0, a[k][1])
        assert a[k][2] == b[k][2]  # the maximum


@given(buckets, st.integers(-2000, 2000))
def test_redis_hash_round_trip_and_pruning(b: dict, prune: int) -> None:
    flat: list[bytes] = []
    for k, (n, v, m) in b.items():
        flat += [f"n:{k}".encode(), repr(n).encode(), f"v:{k}".encode(), repr(v).encode()]
        flat += [f"m:{k}".encode(), repr(m).encode()]
    got, stale = parse_hash(flat, prune)
    assert got == {k: vals for k, vals in b.items() if k >= prune}
    assert len(stale) == 3 * sum(1 for k in b if k < prune)


@settings(max_examples=50)
@given(st.integers(0, 10), st.sampled_from([900, 3600, 86400]))
def test_terminal_risk_only_counts_labels_older_than_the_delay(
    delay_days: int, bucket_s: int
) -> None:
    spec = FeatureSpec(bucket_s, delay_days)
    day = 86400.0
    hist = [("tx", "old", 0.0, "c1", "t", 10.0), ("label", "old", 1)]
    at = (delay_days + 0.5) * day  # the fraud is older than the delay: counted
    hist += [("tx", "now", at, "c2", "t", 10.0)]
    soon = max(0.0, (delay_days - 0.5) * day)  # not older than the delay: not counted
    hist += [("tx", "early", soon, "c3", "t", 10.0)]
    out = replay(spec, hist)
    assert out["now"][FEATURE_INDEX["term_risk_1d"]] == 1.0
    if delay_days >= 1:
        assert out["early"][FEATURE_INDEX["term_n_30d"]] == 0.0


def test_step_counts_the_transaction_on_its_card_but_not_on_its_terminal_window() -> None:
    spec = FeatureSpec(3600, 0)
    card: dict = {}
    term: dict = {}
    x = step(spec, 100.0, 40.0, card, term)
    assert len(x) == len(FEATURE_NAMES)
    assert x[FEATURE_INDEX["card_n_1d"]] == 1.0 and x[FEATURE_INDEX["card_mean_1d"]] == 40.0
    assert x[FEATURE_INDEX["term_n_1d"]] == 0.0 and term  # counted after the features
    assert x[FEATURE_INDEX["card_ratio_30d"]] == 1.0
