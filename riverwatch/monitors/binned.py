"""Binned counts for the per-feature drift (:mod:`monitors.columns`): a column's counts on
bin edges, PSI with what chance alone gives two samples, and the segments' row masks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from riverwatch.monitors.prediction import PSI_FLOOR

ALL = "*"


def bin_counts(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``x`` in the bins that ``edges`` bound (below the first, ..., above the last)."""
    return np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)


def psi_of(share: np.ndarray, ref_share: np.ndarray) -> float:
    """PSI of ``share`` against ``ref_share`` (empty bins floored at ``PSI_FLOOR``)."""
    cs, rs = np.maximum(share, PSI_FLOOR), np.maximum(ref_share, PSI_FLOOR)
    return float(np.sum((cs - rs) * np.log(cs / rs)))


def psi_chance(counts: np.ndarray, ref_counts: np.ndarray) -> tuple[float, float, float]:
    """The PSI of ``counts`` against ``ref_counts`` (on the same bins), and the mean and the
    standard deviation of what chance gives two samples of their sizes: PSI (a symmetrised
    divergence) is about their chi-square statistic over the effective size 1 / (1/n +
    1/n_ref), so (bins - 1) and sqrt(2 (bins - 1)) times 1/n + 1/n_ref."""
    n, m = int(counts.sum()), int(ref_counts.sum())
    if n == 0 or m == 0:
        return 0.0, 0.0, 0.0
    psi = psi_of(counts / n, ref_counts / m)
    dof, scale = len(counts) - 1, 1.0 / n + 1.0 / m
    return psi, dof * scale, math.sqrt(2.0 * dof) * scale


def segment_masks(
    groups: Sequence[Mapping[str, str] | None] | None, n: int, max_segments: int
) -> dict[str, np.ndarray]:
    """Row masks: ``"*"`` (all rows) and one per ``attribute=value`` seen (at most
    ``max_segments``, the most frequent first)."""
    out = {ALL: np.ones(n, dtype=bool)}
    if not groups:
        return out
    keys = pd.Series([
        tuple(sorted((g or {}).items())) for g in groups
    ])  # fmt: skip
    seen: dict[str, list[int]] = {}
    for i, items in enumerate(keys):
        for a, v in items:
            seen.setdefault(f"{a}={v}", []).append(i)
    for seg in sorted(seen, key=lambda s: -len(seen[s]))[:max_segments]:
        mask = np.zeros(n, dtype=bool)
        mask[seen[seg]] = True
        out[seg] = mask
    return out
