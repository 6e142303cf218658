"""The monitor worker exports the core's late-event count as
riverwatch_monitor_late_events_total (and the pooled group values as before), once."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import REGISTRY

from riverwatch.streams.monitor.runner import Monitor


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_late_events_counted_by_the_core_are_exported_once() -> None:
    late = ("riverwatch_monitor_late_events_total", {"window": "time"})
    pooled = ("riverwatch_group_values_pooled_total", {"monitor": "concept"})
    assert "riverwatch_monitor_late_events" in {m.name for m in REGISTRY.collect()}
    before, pooled_before = sample(*late), sample(*pooled)
    m = object.__new__(Monitor)  # no Redis or Kafka: only the core's counts are read
    m.core = SimpleNamespace(late={"time": 3}, pooled={"concept": 2, "fairness": 0})
    m.export_counts()
    assert sample(*late) - before == 3 and sample(*pooled) - pooled_before == 2
    assert m.core.late == {"time": 0} and m.core.pooled == {"concept": 0, "fairness": 0}
    m.export_counts()  # nothing new: nothing added
    assert sample(*late) - before == 3
