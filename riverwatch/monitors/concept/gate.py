"""What makes a rise of a rate worth acting on: large enough (material), beyond chance
(significant) and, for one group's rise, its own (beyond the rest of the events' rate over
the same stretch); see ``min_abs``, ``min_rel``, ``min_count``, ``confirm`` and ``alpha`` of
:class:`monitors.concept.ConceptDriftMonitor`.

ADWIN is sensitive enough to call 0.003 -> 0.004 over a few thousand labels a change, and at
the moment it fires its own estimates still mix the old regime in. So with the gate on, a
detected rise is held for ``confirm`` more observations and reported only if their error rate
is above the rate before the detection by at least ``min_abs`` (absolute) and ``min_rel`` of
that rate (relative), on a stream of at least ``min_count`` observations; rises held and
dropped are counted in ``immaterial``, and ADWIN keeps its window through them, as after a
decrease.

A material rise must also be *significant*: the one-sided exact test of two Poisson rates
(conditional binomial test: given the errors of both stretches, those of the ``confirm``
window follow a binomial with its share of the observations) must reject equal rates at
level ``alpha`` (0: no test). The effect gate alone is not enough where errors are rare: 500
labels at an error rate of 1.5 % hold about 7 errors, and half as many again (+50 %) comes by
chance about one time in ten, so every ADWIN detection of noise was a coin flip away from a
retrain.

A group's rise must also be its own. A rise of every event shows in every group's detector
(a new fraud pattern raised the error of every region and age band); it is the model's
(group ``*``) to report. So a group's rise is *shared* when the rest of the events rose too
over the same observations (their error rate in the group's confirmation window against
theirs over the group's stretch before it, by the same two tests) and the group's rate is
not above the rest's (the same two tests, :meth:`RiseGate.own`). Shared rises are counted in
``shared`` and their detectors start afresh, as after a report; a bias against one group (the
rest unchanged) or a group well above a general rise still names the group.

The two tests are functions too, shared with the label-shift rule
(:meth:`monitors.policy.alert_rules.AlertRules.label_shift`)."""

from __future__ import annotations

from typing import Literal

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

    def own(self, k: float, n: float, k_rest: float, n_rest: float, count: int) -> bool:
        """Whether a group's ``k`` errors in ``n`` observations are materially and
        significantly above the rest of the events' ``k_rest`` in ``n_rest`` over the same
        stretch (``count``: the group's observations in all), so the rise is the group's own
        and not every event's seen in one group. No rest to compare with: its own.

        >>> from riverwatch.monitors.concept import ConceptDriftMonitor
        >>> gate = ConceptDriftMonitor(min_abs=0.005, min_rel=0.5, min_count=1000, alpha=0.001)
        >>> gate.own(24, 500, 150, 3000, count=5000)  # 4.8 % against 5 %: everyone's rise
        False
        >>> gate.own(60, 500, 90, 3000, count=5000)  # 12 % against 3 %
        True
        """
        if n_rest <= 0:
            return True
        rest = k_rest / n_rest
        return self.material(rest, k / n, count) and self.significant(k_rest, n_rest, k, n)

    def verdict(
        self,
        pend: list[float],
        count: int,
        rest: tuple[tuple[float, float], tuple[float, float]] | None,
    ) -> Literal["immaterial", "shared", "own"]:
        """A held rise whose confirmation window is full (``pend``: the rate before, the
        window's errors and observations, the observations the rate before is over; ``count``
        the stream's observations; ``rest``: a group's rest of the events, errors and
        observations over the window and over the stretch before it): not material or not
        significant; ``shared`` when the rest rose too (material and significant) and the
        group is not above it (:meth:`own`); else to report."""
        before, k, n, n0 = pend[:4]
        if not self.material(before, k / n, count) or not self.significant(before * n0, n0, k, n):
            return "immaterial"
        if rest is not None:
            (rest_k, rest_n), (rest_k0, rest_n0) = rest  # over the window, and before it
            rest_rose = (
                rest_n > 0
                and self.material(rest_k0 / rest_n0, rest_k / rest_n, count)
                and self.significant(rest_k0, rest_n0, rest_k, rest_n)
            )
            if rest_rose and not self.own(k, n, rest_k, rest_n, count):
                return "shared"
        return "own"
