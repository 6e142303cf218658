"""The keys (topic, partition, offset) of the records of a part of a batch, held compactly.

The monitor's handler remembers the keys of the records it handled in its last batches
(``agents._Handled``), so a batch consumed again is not monitored twice. A batch's offsets of
one partition are nearly always consecutive, so :class:`Keys` keeps one offset range per
topic and partition, and the offsets themselves only where that range has gaps (a compacted
topic, or a part split around a record the monitor raised on). A frozenset of 2,000 key
tuples held about 250 KB; the handler keeps up to 20 parts, 5 MiB of the helper's memory
under load (README, "Session 32").

>>> k = Keys([("s", 0, 10), ("s", 0, 11), ("s", 0, 12), ("s", 1, 5), ("s", 1, 7)])
>>> ("s", 0, 11) in k, ("s", 0, 13) in k, ("s", 1, 6) in k, ("l", 0, 11) in k
(True, False, False, False)
>>> k.overlaps(Keys([("s", 1, 6), ("s", 0, 9)])), k.overlaps(Keys([("s", 1, 7)]))
(False, True)
"""

from __future__ import annotations

from collections.abc import Iterable

Key = tuple[str, int, int]  # topic, partition, offset
# per (topic, partition): the lowest and highest offset, and the offsets when not every
# offset between those two is there (None: all are)
Span = tuple[int, int, frozenset[int] | None]


class Keys:
    """A set of record keys for membership and overlap tests (see the module)."""

    __slots__ = ("spans",)

    def __init__(self, keys: Iterable[Key]):
        by: dict[tuple[str, int], set[int]] = {}
        for topic, partition, offset in keys:
            by.setdefault((topic, partition), set()).add(offset)
        self.spans: dict[tuple[str, int], Span] = {}
        for tp, offsets in by.items():
            lo, hi = min(offsets), max(offsets)
            full = len(offsets) == hi - lo + 1
            self.spans[tp] = (lo, hi, None if full else frozenset(offsets))

    def __contains__(self, key: Key) -> bool:
        span = self.spans.get((key[0], key[1]))
        if span is None:
            return False
        lo, hi, offsets = span
        return lo <= key[2] <= hi and (offsets is None or key[2] in offsets)

    def overlaps(self, other: Keys) -> bool:
        """True when a key is in both."""
        for tp, mine in self.spans.items():
            theirs = other.spans.get(tp)
            if theirs is None or theirs[1] < mine[0] or mine[1] < theirs[0]:
                continue  # no partition or no offset range in common
            if mine[2] is None and theirs[2] is None:
                return True  # two whole ranges that overlap
            # look the listed offsets of a side (the fewer, if both list them) up in the other
            few = min(
                (s for s in (mine, theirs) if s[2] is not None), key=lambda s: len(s[2] or ())
            )
            lo, hi, listed = theirs if few is mine else mine
            if any(lo <= o <= hi and (listed is None or o in listed) for o in few[2] or ()):
                return True
        return False
