"""The fairness rule: which gaps of a :class:`monitors.fairness.report.AttributeFairness`
are real and large enough to alert on, and the alert's wording.

For each protected attribute, each rate's two extreme groups (highest and lowest rate) carry a
bootstrap interval of their difference and of their ratio (:mod:`monitors.fairness`). A gap
*clears* its threshold when the whole interval is past it, with fairlearn's conventions:

* demographic parity (``selection_rate``, decisions, no label needed): the ratio's upper bound
  below ``min_ratio`` (0.8, the four-fifths rule fairlearn's ``demographic_parity_ratio`` is
  read against), or the difference's lower bound above ``tolerance``;
* equalized odds (``tpr`` and ``fpr``, labeled windows): the ratio's upper bound below
  ``min_ratio`` (``equalized_odds_ratio``), or the difference's lower bound above
  ``odds_tolerance`` (``equalized_odds_difference``).

A ratio counts only when the difference's interval also lies above that tolerance
(materiality): the ratio then names how unequal the rates are; see the comment in
:func:`findings` for why it is not a trigger on its own.

Only rates whose denominators hold ``min_group_size`` events in both groups have intervals
(``FairnessCounts.report``), so a small group cannot raise an alarm; a ratio whose higher rate
is 0 (nobody selected) is not judged.

>>> from riverwatch.monitors.fairness import FairnessCounts
>>> fc = FairnessCounts()
>>> for i in range(2000):
...     old = i % 2 == 0
...     fc.update({"age": "65+" if old else "30-39"}, 0, i % 50 < (10 if old else 2))
>>> found = findings(fc.report(n_boot=300, rates=("selection_rate",))["age"])
>>> [(f.metric, f.high, f.low) for f in found]
[('demographic_parity_difference', '65+', '30-39'), ('demographic_parity_ratio', '65+', '30-39')]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from riverwatch.monitors.fairness.report import AttributeFairness

# rate -> (the metric its difference and its ratio stand for, in fairlearn's names)
METRICS = {
    "selection_rate": ("demographic_parity_difference", "demographic_parity_ratio"),
    "tpr": ("equalized_odds_difference", "equalized_odds_ratio"),
    "fpr": ("equalized_odds_difference", "equalized_odds_ratio"),
}
LABEL = {"selection_rate": "selection rate", "tpr": "TPR", "fpr": "FPR"}


@dataclass(frozen=True)
class FairnessFinding:
    """One gap that cleared its threshold: the metric, the groups and the figures."""

    attribute: str
    metric: str  # e.g. "demographic_parity_ratio", "equalized_odds_difference"
    rate: str  # "selection_rate", "tpr" or "fpr"
    high: str  # the group with the highest rate
    low: str  # ... and the lowest
    rate_high: float
    rate_low: float
    value: float  # the difference (high - low) or the ratio (low / high)
    ci_low: float
    ci_high: float
    threshold: float

    def text(self) -> str:
        """``selection rate 65+ 4.0% vs 30-39 1.0%: demographic parity ratio 0.25 (CI ...)``."""
        kind = "ratio" if self.metric.endswith("ratio") else "difference"
        side = "<" if kind == "ratio" else ">"
        return (
            f"{LABEL[self.rate]} {self.high} {self.rate_high:.2%} vs {self.low} "
            f"{self.rate_low:.2%}: {self.metric.replace('_', ' ')} {self.value:.3f} "
            f"(CI {self.ci_low:.3f}..{self.ci_high:.3f} {side} {self.threshold:g})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def findings(
    rep: AttributeFairness,
    *,
    min_ratio: float = 0.8,
    tolerance: float = 0.02,
    odds_tolerance: float = 0.02,
) -> list[FairnessFinding]:
    """The gaps of one attribute's report whose interval clears its threshold."""
    out = []
    for rate, iv in sorted(rep.intervals.items()):
        diff_metric, ratio_metric = METRICS[rate]
        limit = tolerance if rate == "selection_rate" else odds_tolerance
        hi, lo = rep.groups[iv.high], rep.groups[iv.low]
        common = {
            "attribute": rep.attribute,
            "rate": rate,
            "high": iv.high,
            "low": iv.low,
            "rate_high": getattr(hi, rate),
            "rate_low": getattr(lo, rate),
        }
        if iv.ci_low > limit:
            out.append(
                FairnessFinding(
                    metric=diff_metric,
                    value=iv.gap,
                    ci_low=iv.ci_low,
                    ci_high=iv.ci_high,
                    threshold=limit,
                    **common,
                )
            )
        # A ratio counts only with a material gap too: the gap's interval above the tolerance
        # (0.5% vs 1% is a ratio of 0.5 but half a point). When the intervals still treated
        # events as independent (before the design effects of report.py), a weaker gate (the
        # point gap at the tolerance, then the gap's interval above half of it) gave ratio
        # alarms on calm worlds (the benchmark's no-change seeds 1-2 and 3-5; north 6.2% vs
        # east 0.4% in the calm worker test); the gate stays, judged on the wider intervals.
        material = iv.ci_low > limit
        if math.isfinite(iv.ratio) and iv.ratio_high < min_ratio and material:
            out.append(
                FairnessFinding(
                    metric=ratio_metric,
                    value=iv.ratio,
                    ci_low=iv.ratio_low,
                    ci_high=iv.ratio_high,
                    threshold=min_ratio,
                    **common,
                )
            )
    return out


def message(attribute: str, found: list[FairnessFinding]) -> str:
    """The alert's text: the attribute, then each finding's metric, groups and figures."""
    return f"unfair outcomes by {attribute}: " + "; ".join(f.text() for f in found)
