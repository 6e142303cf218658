"""What makes a rise of a rate worth acting on: large enough (material) and beyond chance
(significant); see ``min_abs``, ``min_rel``, ``min_count`` and ``alpha`` of
:class:`monitors.concept.ConceptDriftMonitor`. The two tests are functions too, shared with
the label-shift rule (:meth:`monitors.policy.alert_rules.AlertRules.label_shift`)."""

from __future__ import annotations

from scipy.stats import binom


def material_rise(
    before: float, after: float, n: int, *, min_abs: float, min_rel: float, min_count: int
) -> bool:
    """Whether a rise of a rate from ``before`` to ``after`` on ``n`` observations is at
    least ``min_abs`` (absolute) and ``min_rel * before`` (relative), with ``min_count``+
    observations."""
    rise = after - before
    return n >= min_count and rise >= min_abs and rise >= min_rel * before


def significant_rise(k0: float, n0: float, k1: float, n1: float, alpha: float) -> bool:
    """Whether ``k1`` events in ``n1`` observations are significantly more (one-sided, at
    ``alpha``) than ``k0`` in ``n0``: the exact conditional test of two Poisson rates
    (Przyborowski and Wilenski, 1940; given ``k0 + k1``, ``k1`` is binomial with the share
    ``n1 / (n0 + n1)``), for streams of 0/1 or of losses in [0, 1]. ``alpha`` <= 0: no test.

    >>> significant_rise(15, 1000, 11, 500, 0.001), significant_rise(15, 1000, 25, 500, 0.001)
    (False, True)
    """
    if alpha <= 0:
        return True
    k0, k1 = round(k0), round(k1)
    if n0 <= 0 or n1 <= 0 or k1 == 0:
        return n0 <= 0 and k1 > 0  # no stretch before to compare with: the effect decides
    p = float(binom.sf(k1 - 1, k0 + k1, n1 / (n0 + n1)))
    return p < alpha


class RiseGate:
    """The materiality and significance tests of a held rise (thresholds set by the monitor)."""

    min_abs: float
    min_rel: float
    min_count: int
    alpha: float

    def material(self, before: float, after: float, n: int) -> bool:
        """Whether a rise from ``before`` to ``after`` on ``n`` observations is worth acting on."""
        return material_rise(
            before, after, n, min_abs=self.min_abs, min_rel=self.min_rel, min_count=self.min_count
        )

    def significant(self, k0: float, n0: float, k1: float, n1: float) -> bool:
        """Whether ``k1`` errors in ``n1`` observations are significantly more than ``k0`` in
        ``n0`` at ``alpha`` (:func:`significant_rise`).

        >>> from riverwatch.monitors.concept import ConceptDriftMonitor

        >>> ConceptDriftMonitor(alpha=0.001).significant(15, 1000, 11, 500)  # 1.5 % -> 2.2 %
        False
        >>> ConceptDriftMonitor(alpha=0.001).significant(15, 1000, 25, 500)  # 1.5 % -> 5 %
        True
        """
        return significant_rise(k0, n0, k1, n1, self.alpha)
