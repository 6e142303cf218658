"""The fairness report of one protected attribute from its per-group confusion counts: each
group's rates, the gaps and ratios between groups, and their bootstrap intervals (see
:mod:`monitors.fairness`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# The four cells of a group's confusion matrix, indexed by 2 * y_true + y_pred.
TN, FP, FN, TP = range(4)


def _denominators(c: np.ndarray) -> dict[str, np.ndarray]:
    """Events, positives and negatives behind each rate of count rows ``c[..., 4]``."""
    return {
        "selection_rate": c.sum(axis=-1),
        "tpr": c[..., FN] + c[..., TP],
        "fpr": c[..., TN] + c[..., FP],
    }


def _rates(c: np.ndarray) -> dict[str, np.ndarray]:
    """Selection rate, TPR, FPR of count rows ``c[..., 4]`` (0 where the denominator is 0)."""
    num = {"selection_rate": c[..., FP] + c[..., TP], "tpr": c[..., TP], "fpr": c[..., FP]}
    return {
        k: np.divide(num[k], d, out=np.zeros(np.shape(d), dtype=float), where=d > 0)
        for k, d in _denominators(c).items()
    }


@dataclass(frozen=True)
class GroupRates:
    """One group's counts and rates."""

    n: int
    positives: int
    negatives: int
    selected: int
    selection_rate: float
    tpr: float
    fpr: float


@dataclass(frozen=True)
class GapInterval:
    """Bootstrap interval of the gap ``rate[high] - rate[low]`` between two groups."""

    rate: str
    high: str
    low: str
    gap: float
    ci_low: float
    ci_high: float
    significant: bool
    # the ratio ``rate[low] / rate[high]`` (fairlearn's min/max ratio) and its interval, from
    # the same draws; NaN when the higher rate is 0
    ratio: float = math.nan
    ratio_low: float = math.nan
    ratio_high: float = math.nan


@dataclass(frozen=True)
class AttributeFairness:
    """The fairness report of one protected attribute."""

    attribute: str
    groups: dict[str, GroupRates]
    demographic_parity_difference: float
    demographic_parity_ratio: float
    equalized_odds_difference: float
    intervals: dict[str, GapInterval] = field(default_factory=dict)
    equalized_odds_ratio: float = math.nan  # fairlearn's: the smaller of the TPR and FPR ratios

    @property
    def significant(self) -> bool:
        """True when any gap's interval lies above the tolerance."""
        return any(i.significant for i in self.intervals.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes None)."""
        d = asdict(self)
        d["significant"] = self.significant
        for k in ("demographic_parity_ratio", "equalized_odds_ratio"):
            if math.isnan(d[k]):
                d[k] = None
        return d


def attribute_fairness(
    attr: str,
    by_group: dict[str, list[int]],
    rng: np.random.Generator,
    n_boot: int,
    confidence: float,
    tolerance: float,
    min_size: int,
    rates: tuple[str, ...] = ("selection_rate", "tpr", "fpr"),
    clusters: dict[str, dict[str, list[int]]] | None = None,
) -> AttributeFairness:
    """The :class:`AttributeFairness` of ``attr`` from its counts per group (see
    :meth:`monitors.fairness.FairnessCounts.report` for the parameters); ``clusters`` holds
    each group's cells per cluster, for the design effects."""
    names = sorted(by_group)
    c = np.array([by_group[g] for g in names], dtype=np.int64)
    deff = design_effects([list((clusters or {}).get(g, {}).values()) for g in names])
    r = _rates(c)
    den = _denominators(c)
    groups = {
        g: GroupRates(
            n=int(den["selection_rate"][i]),
            positives=int(den["tpr"][i]),
            negatives=int(den["fpr"][i]),
            selected=int(c[i, FP] + c[i, TP]),
            **{k: float(v[i]) for k, v in r.items()},
        )
        for i, g in enumerate(names)
    }
    sr = r["selection_rate"]
    top = float(sr.max())
    gap = {k: float(v.max() - v.min()) for k, v in r.items()}
    eligible = {k: np.flatnonzero(d >= min_size) for k, d in den.items() if k in rates}
    intervals = _intervals(names, c, r, eligible, rng, n_boot, confidence, tolerance, deff)
    return AttributeFairness(
        attribute=attr,
        groups=groups,
        demographic_parity_difference=gap["selection_rate"],
        demographic_parity_ratio=float(sr.min() / top) if top > 0 else math.nan,
        equalized_odds_difference=max(gap["tpr"], gap["fpr"]),
        intervals=intervals,
        equalized_odds_ratio=min(_ratio(r["tpr"]), _ratio(r["fpr"])),
    )


def _intervals(
    names: list[str],
    c: np.ndarray,
    r: dict[str, np.ndarray],
    eligible: dict[str, np.ndarray],
    rng: np.random.Generator,
    n_boot: int,
    confidence: float,
    tolerance: float,
    deff: dict[str, np.ndarray],
) -> dict[str, GapInterval]:
    """Bootstrap intervals of the gap (and the ratio) between the two extreme ``eligible``
    groups of each rate ``r`` of the count rows ``c``, each group's draws widened by its
    design effect ``deff[rate]``."""
    # Bonferroni over every pair of groups compared, for all three rates: ``significant``
    # is one verdict over all of them.
    pairs = sum(len(e) * (len(e) - 1) // 2 for e in eligible.values())
    intervals = {}
    if any(len(e) >= 2 for e in eligible.values()) and n_boot > 0:
        for k, e in eligible.items():
            if len(e) < 2:
                continue
            boot = _rates(_resample(c, rng, n_boot, deff[k]))  # rate -> (n_boot, groups)
            hi, lo = e[np.argmax(r[k][e])], e[np.argmin(r[k][e])]
            d = boot[k][:, hi] - boot[k][:, lo]
            alpha = (1 - confidence) / pairs
            q = [alpha / 2, 1 - alpha / 2]
            ci_lo, ci_hi = np.quantile(d, q)
            # The ratio's interval from the same draws (Jeffreys' half counts keep every drawn
            # rate above 0); not counted again in the Bonferroni: it judges the same pair.
            ratio = float(r[k][lo] / r[k][hi]) if r[k][hi] > 0 else math.nan
            rat_lo, rat_hi = np.quantile(boot[k][:, lo] / boot[k][:, hi], q)
            intervals[k] = GapInterval(
                k,
                names[hi],
                names[lo],
                float(r[k][hi] - r[k][lo]),
                float(ci_lo),
                float(ci_hi),
                bool(ci_lo > tolerance),
                ratio,
                float(rat_lo) if math.isfinite(ratio) else math.nan,
                float(rat_hi) if math.isfinite(ratio) else math.nan,
            )
    return intervals


def _ratio(rate: np.ndarray) -> float:
    """fairlearn's between-groups ratio: the smallest rate over the largest (NaN when 0)."""
    top = float(rate.max())
    return float(rate.min() / top) if top > 0 else math.nan


def _resample(
    c: np.ndarray, rng: np.random.Generator, n_boot: int, deff: np.ndarray | None = None
) -> np.ndarray:
    """``n_boot`` Bayesian-bootstrap draws of each group's cells: shape (n_boot, groups, 4).

    Each draw reweights a group's events with Dirichlet weights (Rubin's Bayesian bootstrap),
    with Jeffreys' half count added to every cell: a group with 1 false positive in 40
    negatives then still varies upwards. The plain multinomial bootstrap cannot, and on fair
    simulated data with a 2 % false positive rate it flagged a third of the windows.

    A group's design effect ``deff`` (1: independent events) shrinks its counts to the
    effective sample size (Kish: ``n / deff``) before the draw, so the drawn rates vary
    ``deff`` times as much; their scale, and so the point rates, stay the group's.
    """
    out = np.empty((n_boot, *c.shape), dtype=float)
    for i, row in enumerate(c):
        d = 1.0 if deff is None else float(deff[i])
        out[:, i, :] = rng.dirichlet(row / d + 0.5, size=n_boot) * row.sum()
    return out


def design_effects(clusters: list[list[list[int]]]) -> dict[str, np.ndarray]:
    """Each group's design effect per rate from its cells per cluster (a list per group of
    ``[tn, fp, fn, tp]`` per cluster): how many times the rate's variance with events
    clustered exceeds its variance with independent events.

    A group's clustered variance is the ratio estimator's linearized (cluster-robust,
    "sandwich") variance, ``m/(m-1) * sum_c (a_c - r n_c)^2 / n^2`` over its ``m`` clusters
    with a denominator; the independent one ``r (1 - r) / n``. A group gets the larger of its
    own ratio and the ratio pooled over the groups (the sums of both variances' numerators):
    a group whose window happens to hold no spree shows no clustering itself, yet its rate
    is as clustered as the others' (on simulated sprees of compromised cards, the groups'
    own ratios alone flagged 10 % of fair windows at 99 % confidence, pooled 0.5 %). At
    least 1 (no clusters, a rate of 0 or 1 everywhere: 1), at most ``n`` (one cluster).
    Written here because the libraries that compute it (statsmodels' cluster-robust
    covariances) fit regressions: a formula per window beats a dependency and a model fit.

    >>> calm = [[1, 0, 0, 0]] * 90 + [[0, 1, 0, 0]] * 10
    >>> spree = [[1, 0, 0, 0]] * 90 + [[0, 5, 0, 5]]
    >>> [round(float(x), 1) for x in design_effects([calm])["selection_rate"]]
    [1.0]
    >>> [round(float(x), 1) for x in design_effects([spree])["selection_rate"]]
    [9.2]
    >>> [round(float(x), 1) for x in design_effects([calm, spree])["selection_rate"]]
    [5.1, 9.2]
    """
    out = {}
    arrays = [np.asarray(cells, dtype=float).reshape(-1, 4) for cells in clusters]
    for rate in ("selection_rate", "tpr", "fpr"):
        n = np.zeros(len(arrays))
        clustered = np.zeros(len(arrays))  # m/(m-1) sum_c (a_c - r n_c)^2
        independent = np.zeros(len(arrays))  # r (1 - r) n
        for i, k in enumerate(arrays):
            den = _denominators(k)[rate]
            num = {"selection_rate": k[:, FP] + k[:, TP], "tpr": k[:, TP], "fpr": k[:, FP]}
            has = den > 0
            a, d, m = num[rate][has], den[has], int(has.sum())
            n[i] = d.sum()
            r = a.sum() / n[i] if n[i] else 0.0
            if m < 2 or r <= 0 or r >= 1:
                continue
            clustered[i] = m / (m - 1) * float(((a - r * d) ** 2).sum())
            independent[i] = r * (1 - r) * n[i]
        own = np.divide(clustered, independent, out=np.ones(len(arrays)), where=independent > 0)
        pooled = clustered.sum() / independent.sum() if independent.sum() > 0 else 1.0
        out[rate] = np.clip(np.maximum(own, pooled), 1.0, np.maximum(n, 1.0))
    return out
