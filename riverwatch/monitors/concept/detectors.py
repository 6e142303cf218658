"""The pieces of concept drift detection: River detectors by name, a detected change
(:class:`DriftEvent`) and the state of one (model, group) error stream (:class:`Track`); see
:mod:`monitors.concept`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from river import drift, stats
from river.base import DriftDetector

ALL = "*"
Direction = Literal["up", "down"]


def make_detector(name: str = "adwin", **params: Any) -> DriftDetector:
    """A River detector by name (``adwin``, ``page_hinkley``), e.g. from a settings string.

    Page-Hinkley defaults to ``mode="up"`` (increases only), as the monitor wants.
    """
    if name == "adwin":
        return drift.ADWIN(**{"delta": 0.02, **params})
    if name in ("page_hinkley", "ph"):
        return drift.PageHinkley(**{"mode": "up", **params})
    raise ValueError(f"unknown detector {name!r}: use 'adwin' or 'page_hinkley'")


@dataclass(frozen=True)
class DriftEvent:
    """A detected change of the error of ``model`` on ``group`` (``"*"``: all events).

    ``index`` is the position (1-based) of the observation that triggered it in that
    (model, group) stream; ``time`` its event time, when given. ``before``/``after`` are the
    error rates before the change and now (ADWIN's estimates; otherwise the mean since the last
    detection and a recent moving average).
    """

    model: str
    group: str
    index: int
    time: float | None
    direction: Direction
    before: float
    after: float
    detector: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


class Track:
    """One (model, group) error stream: its detector, counts and running means."""

    __slots__ = ("det", "detections", "errs", "mean", "n", "pending", "recent")

    def __init__(self, det: DriftDetector):
        self.det = det
        self.n = 0
        self.errs = 0.0  # the errors of all n observations
        self.detections = 0
        self.mean = stats.Mean()  # since the last detection
        self.recent = stats.EWMean(fading_factor=0.02)
        # A rise waiting for its confirmation window: [rate before, errors since, count since,
        # observations the rate before is over, the model's all-events errs and n then].
        self.pending: list[float] | None = None
