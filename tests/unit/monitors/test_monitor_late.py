"""The core counts the scored events its time windows drop as late (the worker exports the
count as riverwatch_monitor_late_events_total): one after its window closed is, one in time
is not."""

from __future__ import annotations

from riverwatch.models.features import FEATURE_NAMES
from riverwatch.monitors.concept import ConceptDriftMonitor
from riverwatch.monitors.core import MonitorCore
from riverwatch.monitors.core.config import CoreConfig

DAY = 86_400.0


def row(t: float, partition: int = 0) -> dict:
    return {
        "x": [1.0] * len(FEATURE_NAMES), "score": 0.1, "decision": "approve",
        "groups": {"region": "north"}, "epoch": t, "dq": {"p": partition},
    }  # fmt: skip


def core(window_size: int = 0) -> MonitorCore:
    cfg = CoreConfig(features=FEATURE_NAMES, drift_columns=("amount",), window_size=window_size)
    return MonitorCore(cfg, ConceptDriftMonitor())


def test_an_event_past_its_closed_window_is_counted_late_and_in_time_ones_are_not() -> None:
    c = core()
    c.scores([row(0.1 * DAY), row(0.5 * DAY)])
    assert c.late == {"time": 0}
    c.scores([row(1.2 * DAY)])  # the watermark passes the first day: its window closes
    assert c.late == {"time": 0}
    c.scores([row(0.3 * DAY), row(1.5 * DAY), row(0.9 * DAY)])  # two for the closed day
    assert c.late == {"time": 2}
    assert [n for _, n in c.windows[0].open_windows] == [2]  # they were dropped, not kept


def test_a_lagging_partition_within_the_allowance_is_not_late() -> None:
    c = core(window_size=1000)  # count windows never drop an event
    c.scores([row(0.1 * DAY, 0), row(0.2 * DAY, 1), row(1.5 * DAY, 0)])
    c.scores([row(0.9 * DAY, 1)])  # partition 1 lags: the first day waits for it
    assert c.late == {"time": 0}
    c.scores([row(2.5 * DAY, 0), row(0.95 * DAY, 1)])  # a day past the end: no longer
    assert c.late == {"time": 1}
