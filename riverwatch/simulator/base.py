"""The one event type every simulator yields and every sink and pacer consumes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

SimTopic = Literal["transactions", "labels", "metrics"]

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One simulated record bound for a topic, stamped with its simulated time.

    ``payload`` is exactly what a producer sends (valid for ``core.events.Transaction``,
    ``Label`` or ``MetricPoint``); the ground truth lives beside it, never inside it, so a
    benchmark can score a model without the model seeing the answer:

    - ``fraud``: whether the transaction (or the transaction a label is for) is fraud;
    - ``scenario``: 0 legitimate, 1 amount > 220, 2 compromised terminal,
      3 compromised customer, 4 the drift pattern (see ``SimConfig.drift_day``);
    - ``anomaly``: whether a metric point was injected as an anomaly.

    ``payload`` is a plain dict shared with whoever receives the event: do not mutate it.
    """

    at: float
    """Simulated time, seconds since the Unix epoch (what ``paced`` maps to the wall clock)."""
    topic: SimTopic
    key: str
    """The Kafka key: card_id for transactions, event_id for labels, series_id for metrics."""
    payload: dict[str, Any]
    fraud: bool | None = None
    scenario: int | None = None
    anomaly: bool | None = None


def epoch_seconds(start: datetime) -> int:
    """Whole seconds since the epoch of ``start`` (naive means UTC; sub-seconds are dropped)."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return int(start.timestamp())


def iso_utc(epoch_s: np.ndarray) -> list[str]:
    """ISO 8601 UTC strings (``2026-01-01T12:00:00Z``) for whole epoch seconds, vectorized."""
    stamps = np.asarray(epoch_s, dtype=np.int64).astype("datetime64[s]")
    return np.datetime_as_string(stamps, unit="s", timezone="UTC").tolist()  # type: ignore[no-any-return]
