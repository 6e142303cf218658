"""The pieces of concept drift detection: River detectors by name, a detected change
(:class:`DriftEvent`) and the state of one (model, group) error stream (:class:`Track`); see
:mod:`monitors.concept`.

The default detector is ``ADWIN(delta=0.02)``, chosen with ``python -m bench.drift`` (SEA and
Agrawal streams, abrupt and gradual drifts, held-out seeds): ADWIN scales with the error's own
variance, so one setting fits error rates of 0.2 % and 30 % alike, where Page-Hinkley's
threshold is in absolute units. River's ADWIN forgets its whole window after every detection;
the monitor keeps the shrunk window after a detected *decrease* instead (the original ADWIN
behaviour), so a model that improves does not lose its baseline just before a real drift."""

from __future__ import annotations

from collections.abc import Mapping
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

    __slots__ = ("det", "detections", "errs", "mark", "mean", "n", "pending", "recent")

    def __init__(self, det: DriftDetector):
        self.det = det
        self.n = 0
        self.errs = 0.0  # the errors of all n observations
        self.detections = 0
        self.mean = stats.Mean()  # since the last detection
        self.recent = stats.EWMean(fading_factor=0.02)
        # a group's: the model's all-events errs and n, and its own, when ``mean`` began
        self.mark: tuple[float, int, float, int] | None = None
        # A rise waiting for its confirmation window: [rate before, errors since, count since,
        # observations the rate before is over, the model's all-events errs and n then, a
        # group's: the rest of the events' errors and count over the stretch before].
        self.pending: list[float] | None = None

    def restart(self, everyone: Track | None) -> None:
        """A new stretch "before" (at a detection, or its creation; ``everyone``: the model's
        all-events track, observed before a group's)."""
        self.mean = stats.Mean()
        if everyone is not None and everyone is not self:
            self.mark = (everyone.errs, everyone.n, self.errs, self.n)


def rest_before(everyone: Track | None, track: Track) -> tuple[float, int] | None:
    """The rest of the events' errors and count over a group's stretch before a rise (since
    its ``mark``; ``everyone``: the model's all-events track)."""
    if everyone is None or track.mark is None:
        return None
    k0, n0, g0, gn = track.mark
    return everyone.errs - k0 - (track.errs - g0), everyone.n - n0 - (track.n - gn)


def track_rows(tracks: Mapping[tuple[str, str], Track]) -> list[dict[str, Any]]:
    """One row per (model, group): observations, current error estimate, detections."""
    rows = []
    for (model, group), t in sorted(tracks.items()):
        det = t.det
        est = det.estimation if isinstance(det, drift.ADWIN) else t.recent.get()
        rows.append(
            {"model": model, "group": group, "n": t.n, "error": est, "detections": t.detections}
        )
    return rows
