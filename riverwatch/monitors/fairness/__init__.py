"""Fairness per protected attribute, kept as streaming per-group confusion counts.

:class:`FairnessCounts` adds one event in O(attributes) and merges exactly, so a worker can
keep one per window (or per partition) and combine them. :meth:`FairnessCounts.report` gives,
for every attribute, each group's selection rate, false positive rate and true positive rate,
and the demographic parity difference and ratio and equalized odds difference between groups.
The numbers equal fairlearn's on the same events (``demographic_parity_difference``,
``demographic_parity_ratio``, ``equalized_odds_difference``, ``MetricFrame``), including its
conventions: a rate whose denominator is empty is 0, and the ratio is NaN when no group is
selected at all.

Whether a gap is real is judged with a seeded bootstrap: each group's events are reweighted
(a Bayesian bootstrap of its four cells, see :func:`monitors.fairness.report._resample`), and
the gap between the two extreme groups of each rate gets a percentile interval,
Bonferroni-adjusted for all the group pairs compared over the three rates. ``significant``
means an interval lies above ``tolerance``; on fair simulated data it is true in about
``1 - confidence`` of the windows. Only rates whose denominator has at least
``min_group_size`` events take part, so a group of three events can never raise an alarm.

Events are not independent: one compromised card's spree is many flagged payments of one
customer. Given each event's ``cluster`` (the worker passes the card), the intervals widen by
each group's design effect (:func:`monitors.fairness.report.design_effects`): a group whose 16
selections come from 2 cards counts as far fewer independent selections than 16 cards' would.
Without clusters every event is its own.

The parts: :mod:`monitors.fairness.report` (an attribute's rates, gaps and intervals) and
:mod:`monitors.fairness.rules` (which gaps the policy alerts on).

>>> fc = FairnessCounts()
>>> for i in range(400):
...     fc.update({"sex": "f" if i % 2 else "m"}, y_true=i % 5 == 0, y_pred=i % 4 == 0)
>>> r = fc.report(n_boot=200)["sex"]
>>> r.groups["m"].selection_rate, r.groups["f"].selection_rate, r.demographic_parity_difference
(0.5, 0.0, 0.5)
>>> r.intervals["selection_rate"].significant
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from riverwatch.monitors.fairness.report import AttributeFairness, attribute_fairness

OTHER = "(other)"  # the group of the values past the cap


class FairnessCounts:
    """Per-attribute, per-group confusion counts: cheap to update, exact to merge.

    At most ``max_groups`` values of an attribute are reported apart: the most frequent (the
    first seen among equals); the events of the others are counted in the group
    :data:`OTHER`, and :attr:`pooled` counts those events, so a high-cardinality attribute
    keeps the state (and the bootstrap) bounded. Up to ``SLACK`` times as many values are
    counted while they compete; past that the least frequent are folded into :data:`OTHER`
    (their counts move, exact) to make room, so a value that becomes frequent late still gets
    its own group. (A heavy-hitters sketch such as space-saving would guess counts; fairness
    needs exact ones, hence this small hand-written top-N.)

    >>> fc = FairnessCounts(max_groups=2)
    >>> for v in "abcdd":
    ...     fc.update({"g": v}, 1, 1)
    >>> sorted(fc.to_dict()["g"]), fc.pooled
    (['(other)', 'a', 'd'], 2)
    """

    SLACK = 4

    def __init__(self, max_groups: int | None = None) -> None:
        self._c: dict[str, dict[str, list[int]]] = {}
        # attribute -> group -> cluster -> cells, for the events given a cluster; bounded by
        # the events counted (a window's), not kept by to_dict
        self._k: dict[str, dict[str, dict[str, list[int]]]] = {}
        self.max_groups = max_groups
        self.pooled = 0

    def _counts(self, attr: str, value: str) -> list[int]:
        by_group = self._c.setdefault(attr, {})
        counts = by_group.get(value)
        if counts is None:
            cap = self.max_groups
            if (
                cap is not None
                and value != OTHER
                and len(by_group) - (OTHER in by_group) >= (self.SLACK * cap)
            ):
                self._fold(attr, cap)
            counts = by_group.setdefault(value, [0, 0, 0, 0])
        return counts

    def _fold(self, attr: str, keep: int) -> None:
        """Keep the ``keep`` most frequent values of ``attr`` apart; add the rest to OTHER."""
        by_group = self._c[attr]
        values = [v for v in by_group if v != OTHER]
        if len(values) <= keep:
            return
        # sorted() is stable: among equal counts the first seen stay
        ranked = sorted(values, key=lambda v: -sum(by_group[v]))
        other = by_group.setdefault(OTHER, [0, 0, 0, 0])
        clusters = self._k.get(attr, {})
        for v in ranked[keep:]:
            moved = by_group.pop(v)
            self.pooled += sum(moved)
            for i in range(4):
                other[i] += moved[i]
            if v in clusters:
                _add_cells(clusters.setdefault(OTHER, {}), clusters.pop(v))

    def _capped(self) -> None:
        if self.max_groups is not None:
            for attr in self._c:
                self._fold(attr, self.max_groups)

    def update(
        self,
        groups: Mapping[str, str],
        y_true: int | bool,
        y_pred: int | bool,
        cluster: str | None = None,
    ) -> None:
        """Count one labeled decision for each of its protected attributes; ``cluster`` (e.g.
        the card) is the unit whose events are not independent of each other."""
        cell = 2 * int(bool(y_true)) + int(bool(y_pred))
        for attr, value in groups.items():
            self._counts(attr, value)[cell] += 1
            if cluster is not None:
                by_cluster = self._k.setdefault(attr, {}).setdefault(value, {})
                by_cluster.setdefault(cluster, [0, 0, 0, 0])[cell] += 1

    def update_many(
        self,
        groups: Iterable[Mapping[str, str]],
        y_true: Iterable[Any],
        y_pred: Iterable[Any],
        clusters: Iterable[str | None] | None = None,
    ) -> None:
        """:meth:`update` for each event of parallel sequences."""
        if clusters is None:
            for g, t, p in zip(groups, y_true, y_pred, strict=True):
                self.update(g, t, p)
            return
        for g, t, p, k in zip(groups, y_true, y_pred, clusters, strict=True):
            self.update(g, t, p, k)

    def merge(self, other: FairnessCounts) -> FairnessCounts:
        """Add ``other``'s counts into this one (in place) and return it."""
        for attr, by_group in other._c.items():
            for group, counts in by_group.items():
                acc = self._counts(attr, group)
                for i in range(4):
                    acc[i] += counts[i]
        for attr, clustered in other._k.items():
            for group, by_cluster in clustered.items():
                # the group may have been folded into OTHER here meanwhile
                into = group if group in self._c.get(attr, {}) else OTHER
                _add_cells(self._k.setdefault(attr, {}).setdefault(into, {}), by_cluster)
        return self

    def to_dict(self) -> dict[str, dict[str, list[int]]]:
        """The counts ``{attribute: {group: [tn, fp, fn, tp]}}`` (JSON-ready, e.g. for Redis)."""
        self._capped()
        return {a: {g: list(c) for g, c in by.items()} for a, by in self._c.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Iterable[int]]]) -> FairnessCounts:
        """Rebuild counts saved with :meth:`to_dict`."""
        fc = cls()
        fc._c = {a: {g: [int(x) for x in c] for g, c in by.items()} for a, by in data.items()}
        return fc

    def report(
        self,
        *,
        n_boot: int = 2000,
        confidence: float = 0.99,
        tolerance: float = 0.0,
        min_group_size: int = 30,
        seed: int = 0,
        rates: tuple[str, ...] = ("selection_rate", "tpr", "fpr"),
    ) -> dict[str, AttributeFairness]:
        """Rates, gaps and bootstrap intervals for every attribute seen.

        ``n_boot`` draws (0: no intervals) give intervals at ``confidence`` for all pairs
        together; ``tolerance`` is the gap an interval must clear to be ``significant``;
        ``min_group_size`` the least denominator a rate needs to take part. On fair simulated
        data 1-2 % of windows flag at the default 0.99, 2-6 % at 0.95. ``rates`` limits the
        intervals to some rates (``("selection_rate",)`` for decisions without labels yet).
        """
        self._capped()
        rng = np.random.default_rng(seed)
        return {
            attr: attribute_fairness(
                attr,
                by,
                rng,
                n_boot,
                confidence,
                tolerance,
                min_group_size,
                rates,
                clusters=self._k.get(attr),
            )
            for attr, by in sorted(self._c.items())
        }


def _add_cells(into: dict[str, list[int]], cells: Mapping[str, list[int]]) -> None:
    """Add per-cluster cells ``cells`` into ``into``."""
    for k, c in cells.items():
        acc = into.setdefault(k, [0, 0, 0, 0])
        for i in range(4):
            acc[i] += c[i]
