"""The demo's pure parts: its settings, its episode, and the simulator's run-time change."""

from __future__ import annotations

import itertools
import os
from types import SimpleNamespace
from unittest import mock

import pytest

from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.shell import demo
from riverwatch.shell.demo import DEMO_OVERRIDES, demo_settings, episode
from riverwatch.simulator import SimConfig, TransactionSimulator

DAY = 86_400


def _days(events, start: float, n: int):  # type: ignore[no-untyped-def]
    return list(itertools.takewhile(lambda e: e.at < start + n * DAY, events))


def test_change_reaches_only_days_not_generated_yet() -> None:
    cfg = SimConfig(seed=3, n_customers=200, n_terminals=400)
    start = cfg.start.timestamp()
    plain = _days(TransactionSimulator(cfg).events(), start, 6)
    sim = TransactionSimulator(cfg)
    events = sim.events()
    first = [next(events) for _ in range(50)]  # inside day 0: day 0 is generated
    assert sim.next_day == 1
    at = sim.change(drift_day=0, drift_customers_per_day=20)  # "from day 0" reaches day 1 on
    assert at == 1
    changed = first + _days(events, start, 6)
    day0 = [e for e in changed if e.at < start + DAY]
    assert day0 == [e for e in plain if e.at < start + DAY]  # already generated: unchanged
    new = [e for e in changed if e.scenario == 4]
    assert new and min(e.at for e in new) >= start + DAY
    assert len({e.payload["card_id"] for e in new if e.at < start + 2 * DAY}) >= 15
    assert not [e for e in plain if e.scenario == 4]


def test_change_refuses_options_the_running_days_do_not_read() -> None:
    sim = TransactionSimulator(SimConfig(n_customers=20, n_terminals=40))
    with pytest.raises(ValueError, match="n_customers"):
        sim.change(n_customers=10)


def test_demo_settings_fill_only_what_the_environment_left_unset() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RIVERWATCH_")}
    with mock.patch.dict(os.environ, clean, clear=True):
        s = demo_settings(Settings())
    assert {k: getattr(s, k) for k in DEMO_OVERRIDES} == DEMO_OVERRIDES
    with mock.patch.dict(os.environ, {**clean, "RIVERWATCH_LABEL_DELAY_DAYS": "7"}, clear=True):
        s = demo_settings(Settings())
    assert s.label_delay_days == 7 and s.train_days == DEMO_OVERRIDES["train_days"]


def test_episode_is_card_testing_and_a_regional_spending_shift() -> None:
    s = Settings(demo_customers=500, demo_drift_card_share=0.04, demo_drift_region="east")
    options, words = episode(s, 42)
    assert options["drift_day"] == 42 and options["drift_customers_per_day"] == 20
    (shift,) = options["shifts"]
    assert (shift.kind, shift.day, shift.attribute, shift.group) == ("amount", 42, "region", "east")
    assert words == "card testing on 4% of the cards a day, spending x1.5 in region east"
    options, words = episode(s.model_copy(update={"demo_drift_region": ""}), 42)
    assert "shifts" not in options and "region" not in words


class _Monitor:
    """The demo's view of the system: what the sink sent, what the monitor counted so far (it
    catches up by ``per_look`` records at each look), as ``Names.monitor("stats")`` holds it."""

    def __init__(self, per_look: int) -> None:
        self.sent = {"transactions": 0, "labels": 0}
        self.seen = {"transactions": 0, "labels": 0}
        self.per_look = per_look
        self.day = 0.0
        self.drained: list[bool] = []

    def send(self, batch: list) -> None:  # type: ignore[type-arg]
        if batch and batch[0].at // DAY > self.day:  # a next day: all before it seen?
            self.day = batch[0].at // DAY
            self.drained.append(self.seen == self.sent)
        for ev in batch:
            self.sent[ev.topic] += 1

    def hmget(self, key: str, *fields: str) -> list[bytes]:
        for topic in self.seen:
            self.seen[topic] = min(self.sent[topic], self.seen[topic] + self.per_look)
        return [str(self.seen[t]).encode() for t in ("transactions", "labels")]


def test_the_backfill_ends_once_the_monitor_has_seen_all_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each day, and the live days, come after the monitor has seen the day before: the
    monitor consumes a backlog a partition at a time, so a day sent earlier overtook the one
    before in some partitions, and its time windows closed without the rest of it."""
    monkeypatch.setattr(demo.time, "sleep", lambda s: None)
    mon = _Monitor(per_look=40)
    story = SimpleNamespace(
        names=Names(""), start=0.0, backfilling=lambda *a: None, first_champion=lambda: None
    )
    warm = [  # 250 events a day: a chunk ends each day
        SimpleNamespace(at=t * DAY / 250, topic="labels" if t % 5 == 0 else "transactions")
        for t in range(3 * 250)
    ]
    s = Settings(demo_backfill_days=3)
    demo._backfill(s, story, mon, mon, warm)  # type: ignore[arg-type]
    assert mon.sent == {"transactions": 600, "labels": 150}
    assert mon.seen == mon.sent
    assert mon.drained == [True, True]  # before days 1 and 2
