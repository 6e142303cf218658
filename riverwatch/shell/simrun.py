"""`riverwatch simulate`: build simulators from options, pump them into a sink, show progress."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import typer

from riverwatch.context_parts import kafka_config
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.simulator import (
    GroupBias,
    HttpSink,
    KafkaSink,
    NdjsonSink,
    SeriesConfig,
    SeriesSimulator,
    SimConfig,
    SimEvent,
    Sink,
    TransactionSimulator,
    merge,
    pump,
)


# The demo keeps the embedded broker bounded: Tansu keeps every message in memory, so the
# default demo is a small population (~2k transactions per simulated day) at one simulated
# day per real minute, i.e. ~35 transactions/s plus their labels and scores.
# The first simulated days go unpaced, so labels (7 simulated days late) have already trained
# the online model and filled the dashboard when a new user first looks.
@dataclass(frozen=True)
class Demo:
    """The demo preset."""

    customers: int = 1000
    terminals: int = 2000
    days_per_minute: float = 1.0
    warmup_days: float = 8.0


DEMO = Demo()


def split_at(
    events: Iterable[SimEvent], at: float
) -> tuple[Iterator[SimEvent], Iterator[SimEvent]]:
    """Two iterators over one stream: events before ``at``, then the rest (consume in order)."""
    it = iter(events)
    held: list[SimEvent] = []

    def before() -> Iterator[SimEvent]:
        for ev in it:
            if ev.at >= at:
                held.append(ev)
                return
            yield ev

    def after() -> Iterator[SimEvent]:
        yield from held
        yield from it

    return before(), after()


def parse_bias(text: str | None) -> GroupBias | None:
    """``attribute=group`` (e.g. ``age_band=65+``) -> GroupBias, or None."""
    if not text:
        return None
    attribute, sep, group = text.partition("=")
    if not sep or not attribute or not group:
        raise typer.BadParameter(f"--bias takes attribute=group (e.g. age_band=65+), got {text!r}")
    return GroupBias(attribute=attribute, group=group)


def make_sink(
    settings: Settings, sink: str, out: Path | None, url: str | None, key: str | None
) -> Sink:
    """The sink named on the command line, with a clear error for missing options."""
    if sink == "kafka":
        return KafkaSink(kafka_config(settings), Names(settings.topic_prefix))
    if sink == "ndjson":
        if out is None:
            raise typer.BadParameter("--sink ndjson needs --out FILE")
        return NdjsonSink(out)
    if sink == "http":
        key = key or _key_file(settings)
        return HttpSink(url or f"http://{settings.api_host}:{settings.api_port}", key)
    raise typer.BadParameter(f"--sink must be kafka, http or ndjson, not {sink!r}")


def _key_file(settings: Settings) -> str:
    path = settings.data_dir / "api-key"
    if not path.exists():
        raise typer.BadParameter(f"--sink http needs --key (or a key in {path}, written by `up`)")
    return path.read_text().strip()


def clock_warning(start: float, end: float | None, skew_s: float, now: float) -> str | None:
    """What to tell the user when simulated event times will pass the receivers' clock bound.

    Workers and the API refuse events more than ``RIVERWATCH_MAX_FUTURE_SKEW_S`` ahead of their
    clock (0: no bound); ``end`` None is an endless run.

    >>> clock_warning(0.0, 86_400.0, 3_600.0, now=100_000.0) is None
    True
    >>> print(clock_warning(0.0, None, 3_600.0, now=0.0))  # doctest: +NORMALIZE_WHITESPACE
    warning: events after 1970-01-01 01:00 UTC are more than 3600 s ahead of the clock;
    they will be refused (422 through the API, dead-lettered from Kafka). Pass an earlier
    --start, or set RIVERWATCH_MAX_FUTURE_SKEW_S=0 where the system runs for synthetic future data.
    """
    if skew_s <= 0 or (end is not None and end <= now + skew_s):
        return None
    when = datetime.fromtimestamp(max(start, now + skew_s), UTC).strftime("%Y-%m-%d %H:%M")
    return (
        f"warning: events after {when} UTC are more than {skew_s:g} s ahead of the clock;\n"
        "they will be refused (422 through the API, dead-lettered from Kafka). Pass an earlier\n"
        "--start, or set RIVERWATCH_MAX_FUTURE_SKEW_S=0 where the system runs for synthetic "
        "future data."
    )


def with_progress(events: Iterable[SimEvent], every_s: float = 5.0) -> Iterator[SimEvent]:
    """Pass events through, printing a progress line (count, rate, simulated date) to stderr."""
    t0 = last = time.monotonic()
    for n, ev in enumerate(events, 1):
        yield ev
        now = time.monotonic()
        if now - last >= every_s:
            last = now
            day = datetime.fromtimestamp(ev.at, UTC).strftime("%Y-%m-%d %H:%M")
            print(
                f"  {n:,} events sent, {n / (now - t0):,.0f}/s, simulated time {day}",
                file=sys.stderr,
                flush=True,
            )


@dataclass(frozen=True)
class SimRun:
    """What `riverwatch simulate` is asked for: its options."""

    sink: str
    days: float | None
    customers: int
    terminals: int
    seed: int
    days_per_minute: float | None
    demo: bool = False
    out: Path | None = None
    url: str | None = None
    key: str | None = None
    start: datetime | None = None
    label_delay_days: int = 7
    legit_label_share: float = 1.0
    drift_day: int | None = None
    bias: str | None = None
    series: bool = False
    warmup_days: float = 0.0

    @property
    def n_days(self) -> int | None:
        """Whole simulated days, None for endless."""
        return int(self.days) if self.days is not None else None

    def preset(self) -> SimRun:
        """With ``demo``, the demo's population and pace where the options leave them."""
        if not self.demo:
            return self
        return replace(
            self,
            customers=DEMO.customers,
            terminals=DEMO.terminals,
            days_per_minute=self.days_per_minute or DEMO.days_per_minute,
            warmup_days=self.warmup_days or DEMO.warmup_days,
            series=True,
        )

    def sim_config(self) -> SimConfig:
        """The transaction simulator's configuration."""
        cfg = SimConfig(
            seed=self.seed,
            n_customers=self.customers,
            n_terminals=self.terminals,
            n_days=self.n_days,
            label_delay_days=self.label_delay_days,
            legit_label_share=self.legit_label_share,
            drift_day=self.drift_day,
            bias=parse_bias(self.bias),
        )
        return replace(cfg, start=self.start) if self.start is not None else cfg

    def streams(self, cfg: SimConfig) -> list[Iterable[SimEvent]]:
        """The transactions (and labels), and with ``series`` the demo metric series."""
        streams: list[Iterable[SimEvent]] = [TransactionSimulator(cfg).events()]
        if self.series:
            n_days = self.n_days
            points = int(n_days * 1440) if n_days is not None else None
            streams.append(
                SeriesSimulator(
                    SeriesConfig(
                        series_id="demo.requests_per_min",
                        seed=self.seed,
                        start=cfg.start,
                        n_points=points,
                        anomaly_prob=0.002,
                    )
                ).events()
            )
        return streams


def run_simulation(settings: Settings, run: SimRun) -> int:
    """Generate transactions (+ delayed labels, + optional metric series) into a sink."""
    run = run.preset()
    cfg = run.sim_config()
    streams = run.streams(cfg)
    target = make_sink(settings, run.sink, run.out, run.url, run.key)
    n_days = run.n_days
    typer.echo(
        f"simulating {run.customers} customers, {run.terminals} terminals, seed {run.seed}, "
        f"{'endless' if n_days is None else f'{n_days} days'} -> {run.sink}",
        err=True,
    )
    start = cfg.start.timestamp()
    end = start + n_days * 86400 if n_days is not None else None
    if warning := clock_warning(start, end, settings.max_future_skew_s, time.time()):
        typer.echo(warning, err=True)  # an NDJSON file meets the same bound when replayed
    warmup_days = run.warmup_days
    warm, rest = split_at(with_progress(merge(*streams)), start + warmup_days * 86400)
    try:
        sent = pump(warm, target) if warmup_days else 0
        if warmup_days:
            typer.echo(f"warm-up done ({warmup_days:g} simulated days, {sent:,} events)", err=True)
        sent += pump(rest, target, sim_days_per_minute=run.days_per_minute)
    finally:
        target.close()
    typer.echo(f"done: {sent:,} events sent", err=True)
    return sent
