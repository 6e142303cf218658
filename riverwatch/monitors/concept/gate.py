"""What makes a detected rise of an error rate worth acting on: large enough (material) and
beyond chance (significant); see ``min_abs``, ``min_rel``, ``min_count`` and ``alpha`` of
:class:`monitors.concept.ConceptDriftMonitor`."""

from __future__ import annotations

from scipy.stats import binom


class RiseGate:
    """The materiality and significance tests of a held rise (thresholds set by the monitor)."""

    min_abs: float
    min_rel: float
    min_count: int
    alpha: float

    def material(self, before: float, after: float, n: int) -> bool:
        """Whether a rise from ``before`` to ``after`` on ``n`` observations is worth acting on."""
        rise = after - before
        return n >= self.min_count and rise >= self.min_abs and rise >= self.min_rel * before

    def significant(self, k0: float, n0: float, k1: float, n1: float) -> bool:
        """Whether ``k1`` errors in ``n1`` observations are significantly more (one-sided, at
        ``alpha``) than ``k0`` in ``n0``: the exact conditional test of two Poisson rates
        (Przyborowski and Wilenski, 1940), for error streams of 0/1 or of losses in [0, 1].

        >>> from riverwatch.monitors.concept import ConceptDriftMonitor

        >>> ConceptDriftMonitor(alpha=0.001).significant(15, 1000, 11, 500)  # 1.5 % -> 2.2 %
        False
        >>> ConceptDriftMonitor(alpha=0.001).significant(15, 1000, 25, 500)  # 1.5 % -> 5 %
        True
        """
        if self.alpha <= 0:
            return True
        k0, k1 = round(k0), round(k1)
        if n0 <= 0 or n1 <= 0 or k1 == 0:
            return n0 <= 0 and k1 > 0  # no stretch before to compare with: the effect decides
        p = float(binom.sf(k1 - 1, k0 + k1, n1 / (n0 + n1)))
        return p < self.alpha
