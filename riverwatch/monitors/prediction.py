"""Prediction drift: PSI and Wasserstein distance of score windows against a reference.

Both are cheap enough for every window: the reference's quantile bin edges and bin shares are
computed once, and scipy computes the Wasserstein distance.

>>> ref = np.linspace(0, 1, 1001)
>>> mon = ScoreDriftMonitor(ref, bins=10)
>>> same = mon.compare(ref[::-1])
>>> same.psi, same.wasserstein, same.drifted
(0.0, 0.0, False)
>>> shifted = mon.compare(ref * 0.5)
>>> round(shifted.psi, 2), round(shifted.wasserstein, 2), shifted.drifted
(3.79, 0.25, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance

PSI_FLOOR = 1e-4  # share given to an empty bin, so PSI stays finite


@dataclass(frozen=True)
class ScoreDrift:
    """Prediction drift of a window's scores against the reference scores."""

    psi: float
    wasserstein: float
    drifted: bool  # psi >= psi_threshold
    psi_threshold: float
    bins: int  # bins actually used (ties in the reference can merge quantiles)
    reference_rows: int
    window_rows: int
    score: str = "score"  # the row field whose distribution the PSI compares
    # The share of scores at or above the decision threshold (flagged), in the reference and
    # the window, and how many binomial standard deviations apart: more fraud shows here long
    # before its labels arrive, while a score PSI over deciles barely moves.
    flagged_reference: float = math.nan
    flagged: float = math.nan
    flagged_z: float = math.nan
    flagged_drifted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN, for a window without scores, becomes None)."""
        return {
            k: None if isinstance(v, float) and math.isnan(v) else v
            for k, v in asdict(self).items()
        }


class ScoreDriftMonitor:
    """PSI and Wasserstein distance of score windows against a reference sample.

    The reference's quantile bin edges and bin shares are computed once. PSI below 0.1 is
    usually read as stable, 0.1-0.25 as a moderate shift, above 0.25 as a major one; the
    default ``psi_threshold`` of 0.2 sits between. ``key`` names the row field the scores come
    from (the caller reads it); the flagged share may be judged on other scores (the served
    ones: ``flagged_reference`` here, ``served`` in :meth:`compare`) than the distribution.
    """

    def __init__(
        self,
        reference: Sequence[float] | np.ndarray,
        *,
        bins: int = 10,
        psi_threshold: float = 0.2,
        max_rows: int = 50_000,
        seed: int = 0,
        threshold: float | None = None,
        flagged_rel: float = 0.5,
        flagged_z: float = 5.0,
        key: str = "score",
        flagged_reference: Sequence[float] | np.ndarray | None = None,
    ):
        ref = _finite(reference)
        if len(ref) == 0:
            raise ValueError("the reference needs at least one finite score")
        if len(ref) > max_rows:
            ref = np.random.default_rng(seed).choice(ref, max_rows, replace=False)
        self.reference = np.sort(ref)
        self.psi_threshold, self.max_rows, self.seed = psi_threshold, max_rows, seed
        self.edges = np.unique(np.quantile(self.reference, np.linspace(0, 1, bins + 1)[1:-1]))
        self._ref_share = self._shares(self.reference)
        self.threshold, self.flagged_rel, self.flagged_z = threshold, flagged_rel, flagged_z
        self.key = key
        served = ref if flagged_reference is None else _finite(flagged_reference)
        self._flagged_n = len(served)
        self._flagged_ref = (
            math.nan
            if threshold is None or not len(served)
            else float(np.mean(served >= threshold))
        )

    def _shares(self, x: np.ndarray) -> np.ndarray:
        counts = np.bincount(
            np.searchsorted(self.edges, x, side="left"), minlength=len(self.edges) + 1
        )
        return np.maximum(counts / max(len(x), 1), PSI_FLOOR)

    def compare(
        self,
        scores: Sequence[float] | np.ndarray,
        served: Sequence[float] | np.ndarray | None = None,
    ) -> ScoreDrift:
        """PSI and Wasserstein distance of ``scores`` (NaN when there is no finite score);
        the flagged share of ``served`` (default: ``scores``)."""
        cur = _finite(scores)
        flag = cur if served is None else _finite(served)
        if len(cur) > self.max_rows:
            cur = np.random.default_rng(self.seed).choice(cur, self.max_rows, replace=False)
        if len(cur):
            share = self._shares(cur)
            psi = float(np.sum((share - self._ref_share) * np.log(share / self._ref_share)))
            wd = float(wasserstein_distance(self.reference, cur))
        else:
            psi = wd = math.nan
        p0, p1, z = self._flagged_ref, math.nan, math.nan
        if self.threshold is not None and len(flag) and math.isfinite(p0):
            p1 = float(np.mean(flag >= self.threshold))
            base = max(p0, 1.0 / self._flagged_n)
            z = (p1 - p0) / math.sqrt(base * (1 - base) / len(flag))
        return ScoreDrift(
            flagged_reference=p0,
            flagged=p1,
            flagged_z=z,
            flagged_drifted=bool(p1 >= p0 * (1 + self.flagged_rel) and z >= self.flagged_z),
            psi=psi,
            wasserstein=wd,
            drifted=bool(psi >= self.psi_threshold),
            psi_threshold=self.psi_threshold,
            bins=len(self.edges) + 1,
            reference_rows=len(self.reference),
            window_rows=len(cur),
            score=self.key,
        )


def _finite(x: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]
