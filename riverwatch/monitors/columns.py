"""Per-feature drift, overall and per segment: a test, an effect size and a weight per column.

Each column of a window is binned on its reference's quantiles (ties merge bins, so a count
feature gets one bin per frequent value). A column *drifts* when a chi-square test of the
window's bin counts against the reference's shares rejects at ``alpha`` (Bonferroni over every
column and segment judged) **and** its PSI, the effect size, is at least ``min_psi``: a window
of thousands of events rejects on shifts too small to matter, and a small segment's PSI moves
by chance. The normalised Wasserstein distance (Evidently's default statistic for numerical
columns: the distance over the reference's standard deviation) is reported beside it.

Segments are the values of each ``groups`` attribute (``region=south``): a shift for one group
is diluted in the whole but plain in its segment, so every column is also judged per segment,
against that segment's own reference. The finding names the features, the statistic and the
segment where the shift is strongest: the column that drifted most in all events (or, if none
did, in a segment), and the segment of that column's strongest drift only when the shift is
confined to it, else all events (with the segments where it crossed the threshold when the
whole did not). Confined:
the rest of the events did not move beyond chance (``local_z`` standard deviations), or did
not drift (their PSI under ``min_psi``) while the segment's PSI is at least ``local_ratio``
times theirs; each against its own part of the reference on all events' bins, both less what
chance gives a sample of their size (the rest less its mean, the segment also less
``local_z`` standard deviations).
Where a shift is confined, the rest moves by chance only and the ratio is large (41-118 in the
scenario benchmark's one-region spend shift and bias against one age band, tuning seed 1); a
shift of every event also shows in every segment, early in a gradual one (tuning seeds 1 and
7) 2.5-3 times more in one, by chance or because its values spread less than everyone's (so
the same change moves more of its mass across the bins), and naming the segment whose own PSI
came out largest, as before, sent the reader of a global shift's alert to a random group.

Written with numpy and scipy instead of Evidently's per-column tests because the monitor runs
(columns x segments) tests per window: Evidently's report costs ~0.5 s a window for the
columns alone (``bench.drift``), this ~10 ms with every segment.

>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"a": rng.normal(0, 1, 5000), "b": rng.normal(0, 1, 5000)})
>>> groups = [{"g": "x" if i % 2 else "y"} for i in range(5000)]
>>> mon = ColumnDrift(ref, groups)
>>> cur = pd.DataFrame({"a": rng.normal(0, 1, 3000), "b": rng.normal(0, 1, 3000)})
>>> cur_groups = [{"g": "x" if i % 2 else "y"} for i in range(3000)]
>>> cur.loc[1::2, "b"] += 1.0   # b shifts for group x only
>>> res = mon.compare(cur, cur_groups)
>>> res.drifted, res.strongest["segment"]
(['b'], 'g=x')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chisquare, wasserstein_distance

from riverwatch.monitors.binned import ALL, bin_counts, psi_chance, psi_of, segment_masks
from riverwatch.monitors.prediction import PSI_FLOOR


@dataclass(frozen=True)
class _Ref:
    edges: np.ndarray
    shares: np.ndarray
    values: np.ndarray  # a sample, for the Wasserstein distance
    std: float
    # the rows' counts in all events' bins (the segment's share of all events' reference,
    # which the rest of the events' part is that less)
    whole: np.ndarray


def _ref(
    x: np.ndarray, bins: int, rng: np.random.Generator, whole: _Ref | None = None
) -> _Ref | None:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return None
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = bin_counts(x, edges)
    sample = rng.choice(x, 2000, replace=False) if len(x) > 2000 else x
    inside = counts if whole is None else bin_counts(x, whole.edges)
    return _Ref(edges, counts / len(x), np.sort(sample), float(np.std(x)), inside)


@dataclass(frozen=True)
class ColumnFinding:
    """One column in one segment (``"*"``: all events)."""

    column: str
    segment: str
    psi: float
    wasserstein: float  # normalised by the reference's standard deviation
    p_value: float
    n: int
    drifted: bool
    threshold: float = 0.1  # the least PSI that drifts
    method: str = "psi"

    @property
    def score(self) -> float:
        """The effect size the verdict uses (PSI)."""
        return self.psi


@dataclass(frozen=True)
class FeatureDrift:
    """A window's per-feature drift: drifted columns, their weighted share, the strongest."""

    columns: list[ColumnFinding]  # overall ones, one per column
    drifted: list[str]  # drifted overall or in a segment
    weighted_share: float  # sum of the drifted columns' weights over the sum of all weights
    important: list[str]  # drifted columns whose weight is at least the mean weight
    strongest: dict[str, Any] | None  # the (column, segment) to name (see _strongest)
    segments_judged: int
    window_rows: int

    @property
    def share_drifted(self) -> float:
        """Unweighted share of columns drifted (overall or in a segment)."""
        return len(self.drifted) / len(self.columns) if self.columns else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        d = asdict(self)
        d["share_drifted"] = self.share_drifted
        d["n_drifted"] = len(self.drifted)
        for c, f in zip(d["columns"], self.columns, strict=True):
            c["score"] = f.score
        return d


class ColumnDrift:
    """Reference per column and per segment; :meth:`compare` judges a window against it."""

    # When a finding names a segment (the module docstring): the segment's PSI beyond chance
    # over the rest of the events', and the standard deviations of chance it must clear
    local_ratio: float = 5.0
    local_z: float = 3.0

    def __init__(
        self,
        reference: pd.DataFrame,
        groups: Sequence[Mapping[str, str] | None] | None = None,
        *,
        weights: Mapping[str, float] | None = None,
        bins: int = 10,
        alpha: float = 0.01,
        min_psi: float = 0.1,
        min_rows: int = 300,
        max_segments: int = 64,
        seed: int = 0,
    ):
        if reference.empty:
            raise ValueError("the reference needs at least one column and one row")
        self.columns = list(reference.columns)
        w = {c: max(float((weights or {}).get(c, 1.0 if weights is None else 0.0)), 0.0)
             for c in self.columns}  # fmt: skip
        total = sum(w.values()) or 1.0
        self.weights = {c: v / total for c, v in w.items()}
        self.bins, self.alpha, self.min_psi, self.min_rows = bins, alpha, min_psi, min_rows
        rng = np.random.default_rng(seed)
        self.refs: dict[str, dict[str, _Ref | None]] = {}
        for seg, mask in segment_masks(groups, len(reference), max_segments).items():
            if mask.sum() < min_rows:
                continue
            part = reference[mask]
            whole = self.refs.get(ALL, {})  # "*" comes first
            self.refs[seg] = {
                c: _ref(part[c].to_numpy(dtype=float), bins, rng, whole.get(c))
                for c in self.columns
            }
        self.max_segments = max_segments

    @property
    def segments(self) -> list[str]:
        """The segments with a reference (``"*"`` first)."""
        return list(self.refs)

    def compare(
        self, window: pd.DataFrame, groups: Sequence[Mapping[str, str] | None] | None = None
    ) -> FeatureDrift:
        """Judge ``window`` (its rows' ``groups`` alongside) column by column and segment."""
        masks = segment_masks(groups, len(window), self.max_segments)
        jobs = [
            (seg, masks[seg])
            for seg in self.refs
            if seg in masks and masks[seg].sum() >= self.min_rows
        ]
        n_tests = max(1, len(jobs) * len(self.columns))
        found: list[ColumnFinding] = []
        for seg, mask in jobs:
            part = window[mask]
            for c in self.columns:
                ref = self.refs[seg][c]
                if ref is None:
                    continue
                f = self._test(c, seg, part[c].to_numpy(dtype=float), ref, n_tests)
                if f is not None:
                    found.append(f)
        drifted = sorted({f.column for f in found if f.drifted})
        mean_w = 1.0 / len(self.columns)
        best = self._strongest(found, window, masks)
        return FeatureDrift(
            columns=[f for f in found if f.segment == ALL],
            drifted=drifted,
            weighted_share=sum(self.weights[c] for c in drifted),
            important=[c for c in drifted if self.weights[c] >= mean_w - 1e-12],
            strongest=best,
            segments_judged=len(jobs),
            window_rows=len(window),
        )

    def _strongest(
        self, found: list[ColumnFinding], window: pd.DataFrame, masks: Mapping[str, np.ndarray]
    ) -> dict[str, Any] | None:
        """The (column, segment) to name (the module docstring says which), as a dict; when
        it is all events and they did not drift themselves, with the segments where that
        column drifted (``drifted_in``: a shift of every event can cross the threshold in a
        segment before the whole)."""
        hits = [f for f in found if f.drifted]
        if not hits:
            return None
        whole = [f for f in hits if f.segment == ALL]
        column = max(whole or hits, key=lambda f: f.psi).column
        mine = [f for f in hits if f.column == column and f.segment != ALL]
        local = [f for f in mine if self._confined(f, window[column], masks[f.segment])]
        overall = [f for f in found if f.column == column and f.segment == ALL]
        if local or not overall:
            return asdict(max(local or mine, key=lambda f: f.psi))
        named = asdict(overall[0])
        if not overall[0].drifted:  # why a column under the threshold is named
            named["drifted_in"] = sorted(f.segment for f in mine)
        return named

    def _confined(self, f: ColumnFinding, values: pd.Series, mask: np.ndarray) -> bool:
        """Whether ``f``'s segment shifted beyond the rest of the events (see the module
        docstring), on all events' bins; also when the rest did not move beyond chance (the
        segment's shift may not show on all events' coarser bins: a terminal's risk, mostly
        0, has a few)."""
        ref, part = self.refs[ALL][f.column], self.refs[f.segment][f.column]
        if ref is None or part is None:
            return True
        x = values.to_numpy(dtype=float)
        inside, others = x[mask], x[~mask]
        inside, others = inside[np.isfinite(inside)], others[np.isfinite(others)]
        psi_in, mean_in, sd_in = psi_chance(bin_counts(inside, ref.edges), part.whole)
        psi_out, mean_out, sd_out = psi_chance(
            bin_counts(others, ref.edges), ref.whole - part.whole
        )
        beyond = psi_in - mean_in - self.local_z * sd_in
        moved = max(psi_out - mean_out, 0.0)
        if moved <= self.local_z * sd_out:
            return True
        return moved < self.min_psi and beyond > 0 and beyond >= self.local_ratio * moved

    def _test(
        self, column: str, segment: str, x: np.ndarray, ref: _Ref, n_tests: int
    ) -> ColumnFinding | None:
        x = x[np.isfinite(x)]
        if len(x) == 0:
            return None
        counts = bin_counts(x, ref.edges)
        rs = np.maximum(ref.shares, PSI_FLOOR)
        psi = psi_of(counts / len(x), ref.shares)
        expected = rs / rs.sum() * len(x)
        p = float(chisquare(counts, expected).pvalue) if len(counts) > 1 else 1.0
        wd = float(wasserstein_distance(ref.values, x)) / ref.std if ref.std > 0 else math.nan
        drifted = p < self.alpha / n_tests and psi >= self.min_psi
        return ColumnFinding(column, segment, psi, wd, p, len(x), bool(drifted), self.min_psi)
