"""streams.monitor.keys.Keys answers as the frozenset of key tuples it replaces: membership and
overlap, on consecutive offsets, offsets with gaps, several partitions and topics."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from riverwatch.streams.monitor.keys import Key, Keys

# few topics, partitions and offsets, so that parts overlap often; runs of consecutive offsets
# (a batch's usual shape) as well as scattered ones
keys = st.lists(
    st.tuples(st.sampled_from(["scores", "labels"]), st.integers(0, 2), st.integers(0, 30)),
    max_size=40,
)
runs = st.builds(
    lambda t, p, start, n: [(t, p, o) for o in range(start, start + n)],
    st.sampled_from(["scores", "labels"]),
    st.integers(0, 2),
    st.integers(0, 30),
    st.integers(1, 25),
)
parts = st.one_of(keys, runs, st.builds(lambda a, b: a + b, runs, keys))


@given(parts, parts)
def test_keys_answer_as_a_frozenset_of_the_tuples(a: list[Key], b: list[Key]) -> None:
    ka, kb = Keys(a), Keys(b)
    assert ka.overlaps(kb) == kb.overlaps(ka) == (not frozenset(a).isdisjoint(b))
    for key in [*b, ("scores", 0, -1), ("other", 0, 3)]:
        assert (key in ka) == (key in frozenset(a))


def test_consecutive_offsets_keep_no_offsets() -> None:
    k = Keys([("scores", p, o) for p in range(4) for o in range(1000, 1500)])
    assert all(span[2] is None for span in k.spans.values())
    assert ("scores", 3, 1499) in k and ("scores", 3, 1500) not in k
