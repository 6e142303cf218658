"""Finding 7: group and attribute values tracked by fairness and concept drift are capped.

20,000 distinct values of one protected attribute kept 20,000 groups (the fairness bootstrap
costs about 85 MiB per 1,000) and, in the concept-drift monitor, dropped every value past its
cap. Now the first RIVERWATCH_MONITOR_MAX_GROUP_VALUES values are tracked apart and the rest
share the group '(other)': the state stays bounded and no observation is lost.
"""

from __future__ import annotations

from riverwatch.monitors.concept import ConceptDriftMonitor
from riverwatch.monitors.fairness import OTHER, FairnessCounts

DISTINCT = 20_000
CAP = 100


def test_fairness_counts_keep_the_first_values_and_pool_the_rest() -> None:
    fc = FairnessCounts(max_groups=CAP)
    for i in range(DISTINCT):
        fc.update({"zip": f"z{i}", "band": "a" if i % 2 else "b"}, i % 3 == 0, i % 5 == 0)
    counts = fc.to_dict()
    assert len(counts["zip"]) == CAP + 1 and OTHER in counts["zip"]
    assert set(counts["band"]) == {"a", "b"}  # a small attribute is untouched
    assert sum(map(sum, counts["zip"].values())) == DISTINCT  # no observation lost
    assert sum(counts["zip"][OTHER]) == fc.pooled == DISTINCT - CAP
    report = fc.report(n_boot=50, min_group_size=1)
    assert len(report["zip"].groups) == CAP + 1


def test_merged_fairness_counts_stay_capped() -> None:
    a, b = FairnessCounts(max_groups=CAP), FairnessCounts(max_groups=CAP)
    for i in range(2 * CAP):
        a.update({"zip": f"a{i}"}, 1, 0)
        b.update({"zip": f"b{i}"}, 0, 1)
    merged = a.merge(b).to_dict()["zip"]
    assert len(merged) == CAP + 1
    assert sum(map(sum, merged.values())) == 4 * CAP


def test_concept_drift_detectors_are_capped_with_an_other_group() -> None:
    monitor = ConceptDriftMonitor(max_groups=CAP)
    for i in range(DISTINCT):
        monitor.update("online", float(i % 7 == 0), {"zip": f"z{i}"})
    rows = {r["group"]: r for r in monitor.report()}
    assert len(rows) == 1 + CAP + 1  # all, the first CAP values, zip=(other)
    assert rows[f"zip={OTHER}"]["n"] == DISTINCT - CAP == monitor.dropped
    assert rows["*"]["n"] == DISTINCT


def test_a_value_frequent_only_later_gets_its_own_fairness_group() -> None:
    """Top N, not first N: after 20,000 one-off values, a value seen 500 times is reported
    apart (with its exact counts), and one of the first values goes to '(other)' instead."""
    fc = FairnessCounts(max_groups=CAP)
    for i in range(DISTINCT):
        fc.update({"zip": f"z{i}"}, 0, 0)
    for i in range(500):
        fc.update({"zip": "hot"}, i % 2, 1)
        fc.update({"zip": f"late{i}"}, 0, 0)
    counts = fc.to_dict()["zip"]
    assert len(counts) == CAP + 1
    assert counts["hot"] == [0, 250, 0, 250]
    assert sum(map(sum, counts.values())) == DISTINCT + 1000
    assert sum(counts[OTHER]) == fc.pooled == DISTINCT + 1000 - 500 - (CAP - 1)


def test_a_value_frequent_only_later_gets_its_own_concept_detector() -> None:
    """The concept monitor tracks the most observed groups: a value that turns up often after
    the cap is full takes the place of the least observed one."""
    monitor = ConceptDriftMonitor(max_groups=CAP)
    for i in range(DISTINCT):
        monitor.update("online", 0.0, {"zip": f"z{i}"})
    for i in range(3000):
        monitor.update("online", float(i % 2), {"zip": "hot"})
        monitor.update("online", 0.0, {"zip": f"late{i}"})
    rows = {r["group"]: r for r in monitor.report()}
    assert len(rows) == 1 + CAP + 1  # still bounded: all, CAP groups, zip=(other)
    assert "zip=hot" in rows and rows["zip=hot"]["n"] > 2900  # tracked since it passed the rest
    assert rows["*"]["n"] == DISTINCT + 6000
    # an evicted group's detector goes (detectors do not merge): at most one here, seen once
    assert sum(r["n"] for g, r in rows.items() if g != "*") >= DISTINCT + 6000 - 1
    assert rows[f"zip={OTHER}"]["n"] == monitor.dropped
