"""The demo (`riverwatch up --demo`): simulated traffic that tells the monitor's story.

1. **warming up**: ``demo_backfill_days`` event days go in as fast as the system takes them
   (after each event day the demo waits until the monitor has seen all it sent); once the
   30-day features are full, a first retrain is requested on ``control`` and the backfill
   waits for the champion; then the monitor collects its reference week, scored by that
   champion. Calm comes with a champion, a learned online model and the monitor "ready".
2. **calm**: traffic at ``demo_days_per_minute``; the episode is due ``demo_drift_after_s``
   (wall seconds) later: the one schedule of the demo.
3. **drift injected**: from the next event day on, a new fraud pattern (card testing on
   ``demo_drift_card_share`` of the cards a day) and a spending shift of one region
   (:meth:`TransactionSimulator.change`).
4. **drift alert**: the first ``drift`` alert on a window that starts after the injection.
5. **retrain**: the monitor's first retrain request on a window after the injection.
6. **recovered**: a champion promoted after the injection, whose hold-out holds the episode's
   days, and the monitor's reference moved to it.

Every step after the schedule waits for the real system (the monitor's status and actions,
the alert stream, the registry, all read from Redis), never for a timer. The status is kept
in Redis (``Names.demo``) for GET /v1/demo, the dashboard's banner and `riverwatch status`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import redis

from riverwatch.context_monitor import warmup_days
from riverwatch.context_parts import kafka_config, redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.shell.demostory import DAY, Story
from riverwatch.shell.simrun import split_at
from riverwatch.simulator import (
    KafkaSink,
    SeriesConfig,
    SeriesSimulator,
    Shift,
    SimConfig,
    SimEvent,
    TransactionSimulator,
    merge,
    paced_batches,
)

log = logging.getLogger(__name__)
# The demo's world is faster than the defaults: labels come a day late (not a week), the
# batch model trains on 14 days and is judged on 2, and nothing retrains on a schedule (the
# retrains shown are the monitor's). Its event time starts on 2026-01-01 and runs at
# RIVERWATCH_DEMO_DAYS_PER_MINUTE, so it passes the wall clock after a while: no bound relative
# to the clock (RIVERWATCH_MAX_FUTURE_SKEW_S). Each applies only where the environment set
# nothing.
DEMO_OVERRIDES: dict[str, Any] = {
    "label_delay_days": 1,
    "train_days": 14.0,
    "holdout_days": 2.0,
    "retrain_every_days": 0.0,
    "max_future_skew_s": 0.0,
}
OBSERVE_EVERY_S = 1.0
STALL_S = 60.0  # a backfill day waited for this long without progress goes on anyway
# At most this many of the backfill's transactions are ahead of the monitor (so ahead of the
# scorer too: the monitor counts the scores the scorer wrote). A user's transaction shares the
# `transactions` partitions with the backfill and waits behind what is queued there: 1,000 is
# about 0.1-0.3 s of a scorer's work, against up to a whole event day (~2,000 with the default
# 1,000 customers) when the backfill only waited at day boundaries. Not much smaller: the
# backfill's pace is this many transactions per round trip through scorer and monitor.
MAX_AHEAD = 1000
CHUNK = 250  # the backfill's events per send between two looks at the monitor


def demo_settings(settings: Settings) -> Settings:
    """``settings`` with the demo's defaults where the environment did not choose."""
    update = {k: v for k, v in DEMO_OVERRIDES.items() if k not in settings.model_fields_set}
    return settings.model_copy(update=update)


def clear_demo_status(settings: Settings) -> None:
    """Forget the status of an earlier demo (Valkey keeps it across runs of `up`)."""
    r = redis_client(redis_config(settings))
    try:
        r.delete(Names(settings.topic_prefix).demo())
    finally:
        r.close()


def episode(settings: Settings, first_day: int) -> tuple[dict[str, Any], str]:
    """The simulator options of the drift episode from ``first_day`` on, and its words."""
    s = settings
    options: dict[str, Any] = {
        "drift_day": first_day,
        "drift_customers_per_day": s.demo_drift_card_share * s.demo_customers,
    }
    words = f"card testing on {s.demo_drift_card_share:.0%} of the cards a day"
    if s.demo_drift_region and s.demo_drift_spend_factor != 1.0:
        options["shifts"] = (
            Shift(
                "amount",
                first_day,
                s.demo_drift_spend_factor,
                attribute="region",
                group=s.demo_drift_region,
            ),
        )
        words += f", spending x{s.demo_drift_spend_factor:g} in region {s.demo_drift_region}"
    return options, words


def first_train_day(settings: Settings) -> int:
    """The event day of the first retrain: the monitor's warm-up (until every feature window
    can be full) and a label delay, so that the champion scores the week the monitor then
    takes as its reference (a champion whose training rows all fall in the warm-up moves the
    reference to the week after its promotion: ``streams.monitor.runner``)."""
    return int(warmup_days(settings)) + settings.label_delay_days


def _backfill(
    s: Settings, story: Story, r: redis.Redis, sink: KafkaSink, warm: Iterable[SimEvent]
) -> None:
    """Send ``warm`` day by day; before each next day (and the live days), wait until the
    monitor has seen all that was sent: the system's own pace, a bounded backlog in the
    broker, and no day overtaking the one before in some partitions (the monitor consumes
    a backlog a partition at a time, and its time windows wait for a lagging partition only
    up to a window past their end: ``monitors.windows``); within a day, keep at most
    :data:`MAX_AHEAD` transactions ahead of it (a short queue in front of a user's
    transaction). On :func:`first_train_day`, wait for a first champion."""
    key = story.names.monitor("stats")
    base = [int(v or 0) for v in r.hmget(key, "scores", "labels")]
    sent = {"transactions": 0, "labels": 0}
    of = round(s.demo_backfill_days)
    t0, day = time.monotonic(), 0
    batch: list[SimEvent] = []
    train_day = first_train_day(s)
    for ev in warm:
        d = int((ev.at - story.start) // DAY)
        if d != day:
            sink.send(batch)  # (empty when a chunk ended the day)
            batch = []
            _wait(story, r, key, base, dict(sent), d, of, t0, sent)
            day = d
            if d == train_day:
                story.first_champion()
        batch.append(ev)
        if ev.topic in sent:
            sent[ev.topic] += 1
        if len(batch) >= CHUNK:
            sink.send(batch)
            batch = []
            ahead = {"transactions": sent["transactions"] - MAX_AHEAD, "labels": 0}
            _wait(story, r, key, base, ahead, d, of, t0, sent, poll_s=0.02, stall_s=5.0)
    sink.send(batch)
    _wait(story, r, key, base, dict(sent), day, of, t0, sent)  # the live days come after it


def _wait(
    story: Story,
    r: redis.Redis,
    key: str,
    base: list[int],
    want: dict[str, int],
    day: int,
    of: int,
    t0: float,
    sent: dict[str, int],
    poll_s: float = 0.2,
    stall_s: float = STALL_S,
) -> None:
    """Until the monitor has seen ``want`` (transactions and labels, counted from ``base``)."""
    last, progress_at = -1, time.monotonic()
    while True:
        seen = [
            int(v or 0) - b for v, b in zip(r.hmget(key, "scores", "labels"), base, strict=True)
        ]
        rate = sum(sent.values()) / max(time.monotonic() - t0, 1e-6)
        if seen[0] >= want["transactions"] and seen[1] >= want["labels"]:
            story.backfilling(day, of, rate)
            return
        if sum(seen) != last:
            last, progress_at = sum(seen), time.monotonic()
        elif time.monotonic() - progress_at > stall_s:  # e.g. replayed events, not counted
            log.warning("demo: the monitor made no progress for %.0f s; going on", stall_s)
            return
        story.backfilling(day, of, rate, f"; the monitor has seen {seen[0]:,} transactions")
        time.sleep(poll_s)


def run_demo(settings: Settings) -> None:
    """The demo's traffic and story, until stopped (`up` stops it first)."""
    s = settings
    sim = TransactionSimulator(
        SimConfig(
            seed=s.demo_seed,
            n_customers=s.demo_customers,
            n_terminals=2 * s.demo_customers,
            label_delay_days=s.label_delay_days,
        )
    )
    start = sim.config.start.timestamp()
    series = SeriesSimulator(
        SeriesConfig(
            series_id="demo.requests_per_min",
            seed=s.demo_seed,
            start=sim.config.start,
            anomaly_prob=0.002,
        )
    )
    r = redis_client(redis_config(s))
    story = Story(s, r, start)
    story.publish()
    sink = KafkaSink(kafka_config(s), Names(s.topic_prefix))
    warm, rest = split_at(merge(sim.events(), series.events()), start + s.demo_backfill_days * DAY)
    try:
        _backfill(s, story, r, sink, warm)
        _live(s, story, sim, sink, rest)
    finally:
        sink.close()
        r.close()


def _live(
    s: Settings, story: Story, sim: TransactionSimulator, sink: KafkaSink, rest: Iterator[SimEvent]
) -> None:
    looked = 0.0
    for batch in paced_batches(rest, s.demo_days_per_minute):
        sink.send(batch)
        if time.monotonic() - looked < OBSERVE_EVERY_S:
            continue
        looked = time.monotonic()
        if story.observe(batch[-1].at):
            options, words = episode(s, sim.next_day)
            story.inject(sim.change(**options), words)
