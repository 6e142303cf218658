"""The monitor benchmark's table (bench/monitor_report.py): detections and delays per kind."""

from __future__ import annotations

import pytest

DAY = 86_400.0


def test_a_kind_caught_in_a_minority_of_runs_shows_those_runs_delays(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 14: the step's retrain row read "1/3 | -", as if the one run that asked for a
    retrain had no delay; the median of [9.4, inf, inf] is beyond the run, so the cell says
    so and gives the delay of the run that caught it."""
    from bench.monitor_report import table
    from bench.monitor_world import CHANGE

    step = "fraud x3 step (label shift)"
    change = CHANGE * DAY
    results = [
        {"scenario": step, "seed": k, "start": 0.0, "alerts": alerts}
        for k, alerts in (
            (3, [("retrain", "batch", change + 9.4 * DAY), ("drift", "labels", change + DAY)]),
            (4, [("drift", "labels", change + 2 * DAY)]),
            (5, []),
        )
    ]
    table(results, [3, 4, 5])
    rows = {
        line.split(" | ")[1].removesuffix(" **(target)**"): line
        for line in capsys.readouterr().out.splitlines()
        if step in line
    }
    assert "| 1/3 | - (most runs none; 9.4 in 1) |" in rows["retrain"]
    assert "| 2/3 | 2.0 (-5.0 from labels) |" in rows["drift (labels)"]
    assert "| 0/3 | - |" in rows["fairness"]
