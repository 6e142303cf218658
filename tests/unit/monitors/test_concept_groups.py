"""A group's concept drift must be its own (riverwatch.monitors.concept.gate): a rise of every
event is the model's to report, not each group's; a rise in one group still names it."""

from __future__ import annotations

import numpy as np
import pytest

from riverwatch.monitors.concept import ConceptDriftMonitor

GATE = {"min_abs": 0.005, "min_rel": 0.5, "min_count": 1000, "alpha": 0.001}  # the defaults
REGIONS = ("north", "south", "east", "west")


def run(seed: int, rates: dict[str, tuple[float, float]], n: int = 40_000) -> tuple:  # type: ignore[type-arg]
    """Errors of one model over ``n`` events in four regions, each region's rate changing
    halfway from ``rates[region][0]`` to ``[1]``; the reported events and the monitor."""
    rng = np.random.default_rng(seed)
    mon = ConceptDriftMonitor(**GATE)
    found = []
    for i in range(n):
        region = REGIONS[int(rng.integers(4))]
        before, after = rates[region]
        wrong = rng.random() < (before if i < n // 2 else after)
        found += mon.update("batch", float(wrong), {"region": region}, time=float(i))
    return found, mon


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_rise_of_every_event_is_the_models_not_each_groups(seed: int) -> None:
    """Every region's error 1 % -> 5 %: the model's detector reports it, and no region's
    (before: each region's detector reported it too, four alerts more for one change)."""
    found, mon = run(seed, dict.fromkeys(REGIONS, (0.01, 0.05)))
    assert "*" in {e.group for e in found}
    assert [e.group for e in found if e.group != "*"] == []
    assert mon.shared >= 2  # the regions' detectors did fire, with everyone


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_rise_in_one_group_is_named(seed: int) -> None:
    """South's error 1 % -> 8 %, the others stay at 1 %: south is reported as its own."""
    rates = dict.fromkeys(REGIONS, (0.01, 0.01)) | {"south": (0.01, 0.08)}
    found, _ = run(seed, rates)
    groups = {e.group for e in found if e.group != "*"}
    assert groups == {"region=south"}
