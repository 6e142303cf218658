"""The monitor core's state, and the small helpers its parts share."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riverwatch.monitors.cbpe import Estimate, estimate
from riverwatch.monitors.columns import ColumnDrift
from riverwatch.monitors.concept import ConceptDriftMonitor
from riverwatch.monitors.core.config import (
    DAY,
    CoreConfig,
    Row,
    RowCodec,
    Store,
    default_frame,
)
from riverwatch.monitors.dataquality import DataQuality
from riverwatch.monitors.dataquality.rows import row_keys, row_partition
from riverwatch.monitors.estimated import EstimateLedger
from riverwatch.monitors.fairness import FairnessCounts
from riverwatch.monitors.fairness.report import AttributeFairness
from riverwatch.monitors.labelshift import LabelRates
from riverwatch.monitors.policy import Policy
from riverwatch.monitors.prediction import ScoreDriftMonitor
from riverwatch.monitors.quality import VolumeMonitor
from riverwatch.monitors.windows import CountWindows, TimeWindows


class MonitorState:
    """What one monitor holds: its windows, reference, statistics and policy (the parts of
    :class:`monitors.core.MonitorCore` share it)."""

    def __init__(
        self,
        config: CoreConfig,
        concept: ConceptDriftMonitor,
        policy: Policy | None = None,
        *,
        store: Store | None = None,
        frame: Callable[[Sequence[Row], Sequence[str]], pd.DataFrame] = default_frame,
        rejected: Callable[[], Mapping[str, int]] | None = None,
    ):
        self.c = config
        self.concept = concept
        self.policy = policy or Policy(config.policy)
        self.store: Store = store or (lambda kind, result: None)
        self.frame = frame
        self.windows: list[CountWindows[Row] | TimeWindows[Row]] = []
        if config.window_size:
            self.windows.append(CountWindows(config.window_size))
        if config.window_s:  # bounded: a sample of its rows, exact counts (monitors.windows)
            codec = RowCodec()  # kept as bytes: a day's rows, in memory and in snapshots
            self.windows.append(
                TimeWindows[Row](
                    config.window_s,
                    config.window_s,  # a lagging partition holds the windows for a window
                    max_rows=config.window_rows,
                    tally=row_keys,
                    source=row_partition,
                    sources=config.sources,
                    pack=codec.pack,
                    unpack=codec.unpack,
                )
            )
        self.labeled: CountWindows[tuple[Row, int]] = CountWindows(config.label_window)
        # label shift: fraud and label counts per time window of the labelled events
        self.label_rates = LabelRates(config.window_s or DAY, config.label_delay_s)
        self.as_of = -math.inf
        self.first: float | None = None
        self.ref_from: float | None = None  # the reference collects events from here ...
        self.ref_until: float | None = None  # ... to here
        self._ref_rows: list[Row] = []
        self._rng = np.random.default_rng(0)
        self._seen = 0
        # a new score reference only (after an online-model reset or a promotion), collected
        # to here
        self._scores_until: float | None = None
        # (combined, batch score, crc32 of the card, window index) of the score reference
        self._ref_scores: list[tuple[float, float, float, float]] = []
        self.features: ColumnDrift | None = None
        self.scores_ref: ScoreDriftMonitor | None = None
        self.volume: VolumeMonitor | None = None
        self.ref_info: dict[str, Any] = {}
        self.weights = config.weights
        # performance before labels: the reference scores' CBPE estimate, and the judged
        # windows' estimates waiting for their labels (monitors.estimated)
        self.ref_estimate: Estimate | None = None
        self.ledger = EstimateLedger()
        # observations pooled into "(other)" past max_group_values, per monitor (the worker
        # exports them as riverwatch_group_values_pooled_total)
        self.pooled = {"concept": 0, "fairness": 0}
        # scored events a time window dropped as late (TimeWindows), per window kind, since the
        # worker last exported them (riverwatch_monitor_late_events_total; count windows: none)
        self.late = {"time": 0}
        # data quality per window kind, its reference collected over the reference period;
        # ``rejected`` reads the rejected records' counters (core.rejects) once per window
        self.rejected = rejected or (lambda: {})
        self.quality: dict[str, DataQuality] = {}
        self._quality_period = (math.inf, math.inf)
        self.quality_changed = False  # since the runner last persisted quality_state()

    @property
    def ready(self) -> bool:
        """Whether windows are judged (a reference exists)."""
        return self.features is not None

    def _judged(self, t: float) -> bool:
        return self.ref_from is not None and t >= self.ref_from

    def _estimate(self, scores: np.ndarray) -> Estimate:
        return estimate(scores, self.c.review_threshold, confidence=self.c.perf_confidence)

    def _fairness(
        self,
        groups: Iterable[Mapping[str, str]],
        y_true: Iterable[Any],
        y_pred: Iterable[Any],
        cards: Iterable[str | None],
        **report: Any,
    ) -> dict[str, AttributeFairness]:
        """Fairness of one window's events (:meth:`FairnessCounts.report` with 1000 draws),
        clustered by card (a compromised card's spree is one customer's, not many
        independent decisions); the values pooled into "(other)" are counted as the report
        folds the tail."""
        fc = FairnessCounts(max_groups=self.c.max_group_values)
        fc.update_many(groups, y_true, y_pred, cards)
        fair = fc.report(
            n_boot=1000,
            confidence=self.c.fairness_confidence,
            tolerance=self.c.fairness_tolerance,
            **report,
        )
        self.pooled["fairness"] += fc.pooled
        return fair
