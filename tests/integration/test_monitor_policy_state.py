"""The monitor's policy state outlives the monitor (real Valkey): a restarted helper neither
repeats an action still cooling down nor forgets its performance baselines."""

from __future__ import annotations

import pytest

from riverwatch.context import Context
from riverwatch.context_parts import redis_config
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.monitors.windows import Window
from riverwatch.streams.monitor.runner import Monitor

pytestmark = pytest.mark.integration


def test_a_restarted_monitor_keeps_cooldowns_and_baselines(settings: Settings) -> None:
    # one window's drop acts here (the persistence over windows is tested in test_policy)
    settings = settings.model_copy(update={"monitor_perf_windows": 1})
    r = redis_client(redis_config(settings))
    win = Window("count", 0, 0.0, 600.0, [], [])
    first = Monitor(Context.from_settings(settings), r, "w1")
    first.publish(first.policy.perf(win, "combined", {"ap": 0.8}, provisional=False))
    drop = first.policy.perf(win, "combined", {"ap": 0.2}, provisional=False)
    assert [c.action for c in drop.controls] == ["retrain"]
    first.publish(drop)

    again = Monitor(Context.from_settings(settings), r, "w2")  # the helper restarted
    assert again.policy.state() == first.policy.state()
    later = Window("count", 1, 600.0, 1200.0, [], [])
    repeat = again.policy.perf(later, "combined", {"ap": 0.2}, provisional=False)
    assert repeat.controls == []  # the retrain is still cooling down (event time)
    assert again.policy.state()["history"]["combined"] == [0.8]  # the baseline survived

    r.set(first.names.monitor("policy"), b"{not json")
    assert (
        Monitor(Context.from_settings(settings), r, "w3").policy.state()["history"] == {}
    )  # unreadable: afresh
    r.close()
