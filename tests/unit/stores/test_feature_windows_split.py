"""The stream's split of an entity's buckets (pure): window sums of the stored buckets (what the
feature store returns) plus this batch's own buckets give the features of all the buckets; the
days the store prunes hold no bucket a later window can reach."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from riverwatch.models.features import WINDOWS_DAYS, FeatureSpec, step, window_sums

specs = st.builds(FeatureSpec, st.sampled_from([900, 3600, 86400]), st.integers(0, 10))
buckets = st.dictionaries(
    st.integers(-2000, 2000),
    st.tuples(st.integers(0, 50).map(float), st.floats(0, 1e4), st.floats(0, 1e4)).map(list),
    max_size=30,
)


def _merged(a: dict, b: dict) -> dict:
    out = {k: list(v) for k, v in a.items()}
    for k, (n, v, m) in b.items():  # [count, sum, maximum]
        vals = out.setdefault(k, [0.0, 0.0, 0.0])
        vals[0] += n
        vals[1] += v
        vals[2] = max(vals[2], m)
    return out


@settings(max_examples=200)
@given(specs, buckets, buckets, buckets, buckets, st.floats(0, 2000 * 3600), st.floats(0, 5e3))
def test_stored_sums_plus_the_batch_equal_the_features_of_all_buckets(
    spec: FeatureSpec,
    card_stored: dict,
    card_batch: dict,
    term_stored: dict,
    term_batch: dict,
    epoch: float,
    amount: float,
) -> None:
    b = spec.bucket(epoch)
    spans = tuple(w * spec.per_day for w in WINDOWS_DAYS)
    card_base = window_sums(card_stored, b, spans)
    term_base = window_sums(term_stored, b - spec.delay_buckets, spans)
    card, term = _merged({}, card_batch), _merged({}, term_batch)
    got = step(spec, epoch, amount, card, term, card_base, term_base)
    everything_card = _merged(card_stored, card_batch)
    everything_term = _merged(term_stored, term_batch)
    want = step(spec, epoch, amount, everything_card, everything_term)
    for g, w in zip(got, want, strict=True):
        assert abs(g - w) <= 1e-9 * max(1.0, abs(w)), (got, want)
    # the batch's buckets got this transaction, as step() without bases does
    assert card == _merged(card_batch, {b: [1.0, min(amount, 1e12), min(amount, 1e12)]})
    assert term[b][0] == term_batch.get(b, [0.0])[0] + 1.0


@given(specs, st.integers(-(10**6), 10**6), st.integers(0, 10**4))
def test_pruned_days_hold_no_bucket_a_later_window_reaches(
    spec: FeatureSpec, bucket: int, later: int
) -> None:
    first_kept = spec.prune_day(bucket) * spec.per_day  # days before this one are deleted
    q = bucket + later  # a later transaction's card windows, and its terminal windows
    for end in (q, q - spec.delay_buckets):
        oldest_in_a_window = end - max(WINDOWS_DAYS) * spec.per_day + 1
        assert oldest_in_a_window >= first_kept
    assert first_kept <= spec.oldest_needed(bucket)
