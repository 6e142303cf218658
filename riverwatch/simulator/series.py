"""Metric series with trend, daily and weekly seasonality, noise and injected anomalies.

The forecasting workers and their anomaly alerts need series whose anomalies are known:
every point says (beside its payload) whether it was injected as one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from riverwatch.simulator.base import DAY_S, SimEvent, epoch_seconds, iso_utc

WEEK_S = 7 * DAY_S
_MONDAY = 4 * DAY_S  # 1970-01-05, the first Monday after the epoch
_CHUNK = 1024  # points drawn per random stream; fixed so a seed means one series


@dataclass(frozen=True)
class SeriesConfig:
    """One synthetic metric series; the same config always gives the same points.

    value(t) = level + trend_per_day * days since start
               + daily_amplitude * cos(2π (time of day - 14:00) / 1 day)      (peak 14:00 UTC)
               + weekly_amplitude * cos(2π (time since Monday - 2.5 d) / 7 d) (peak Wed noon)
               + Normal(0, noise_sd) + anomaly

    Anomalies: each point independently with probability ``anomaly_prob``, plus the points
    nearest to each time in ``anomaly_at``; an anomaly adds ``anomaly_magnitude`` noise
    standard deviations (absolute units when ``noise_sd`` is 0), upwards for ``"spike"``,
    downwards for ``"dip"``, either way at random for ``"both"``. Points are ``step_s``
    simulated seconds apart; ``n_points=None`` is endless.
    """

    series_id: str = "demo.requests_per_min"
    seed: int = 0
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    step_s: int = 60
    n_points: int | None = None
    level: float = 100.0
    trend_per_day: float = 0.0
    daily_amplitude: float = 20.0
    weekly_amplitude: float = 10.0
    noise_sd: float = 2.0
    anomaly_prob: float = 0.0
    anomaly_at: tuple[datetime, ...] = ()
    anomaly_magnitude: float = 6.0
    anomaly_kind: Literal["spike", "dip", "both"] = "both"

    def __post_init__(self) -> None:
        if self.step_s < 1:
            raise ValueError("SeriesConfig.step_s must be a whole number of seconds >= 1")
        if self.n_points is not None and self.n_points < 0:
            raise ValueError("SeriesConfig.n_points must be >= 0 or None (endless)")
        if self.noise_sd < 0:
            raise ValueError("SeriesConfig.noise_sd must be >= 0")
        if not 0.0 <= self.anomaly_prob <= 1.0:
            raise ValueError("SeriesConfig.anomaly_prob must be within [0, 1]")
        if self.anomaly_kind not in ("spike", "dip", "both"):
            raise ValueError("SeriesConfig.anomaly_kind must be 'spike', 'dip' or 'both'")


class SeriesSimulator:
    """Yield ``metrics`` SimEvents (key = series_id) for one :class:`SeriesConfig`.

    ``SimEvent.anomaly`` is True exactly on the injected points. Each call to ``events()``
    starts from the first point again.
    """

    def __init__(self, config: SeriesConfig | None = None) -> None:
        self.config = config if config is not None else SeriesConfig()
        self._start = epoch_seconds(self.config.start)
        step = self.config.step_s
        self._forced = {
            round((epoch_seconds(t) - self._start) / step) for t in self.config.anomaly_at
        }

    def events(self) -> Iterator[SimEvent]:
        """Yield the series' points in time order (endless if ``n_points`` is None)."""
        total = self.config.n_points
        chunk = 0
        while total is None or chunk * _CHUNK < total:
            size = _CHUNK if total is None else min(_CHUNK, total - chunk * _CHUNK)
            yield from self._chunk(chunk, size)
            chunk += 1

    def _chunk(self, chunk: int, size: int) -> Iterator[SimEvent]:
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, chunk])
        index = chunk * _CHUNK + np.arange(size)
        epoch = self._start + index * cfg.step_s
        # Full-size draws even for a short last chunk: a finite series is then exactly the
        # beginning of the endless one with the same seed.
        noise = rng.normal(0.0, cfg.noise_sd, size=_CHUNK)[:size]
        hit = rng.random(_CHUNK)[:size] < cfg.anomaly_prob
        signs = np.where(rng.random(_CHUNK)[:size] < 0.5, -1.0, 1.0)
        if self._forced:
            hit |= np.isin(index, np.fromiter(self._forced, dtype=np.int64))
        if cfg.anomaly_kind != "both":
            signs[:] = 1.0 if cfg.anomaly_kind == "spike" else -1.0
        scale = cfg.noise_sd if cfg.noise_sd > 0 else 1.0
        value = (
            cfg.level
            + cfg.trend_per_day * (epoch - self._start) / DAY_S
            + cfg.daily_amplitude * np.cos(2 * math.pi * ((epoch % DAY_S) - 14 * 3600) / DAY_S)
            + cfg.weekly_amplitude
            * np.cos(2 * math.pi * (((epoch - _MONDAY) % WEEK_S) - 2.5 * DAY_S) / WEEK_S)
            + noise
            + np.where(hit, signs * cfg.anomaly_magnitude * scale, 0.0)
        )
        sid = cfg.series_id
        for at, ts, v, anomaly in zip(
            epoch.astype(np.float64).tolist(),
            iso_utc(epoch),
            value.tolist(),
            hit.tolist(),
            strict=True,
        ):
            yield SimEvent(
                at, "metrics", sid, {"series_id": sid, "timestamp": ts, "value": v}, anomaly=anomaly
            )
