"""What the forecasters say to the world: forecast and alert payloads, derived series.

Pure shaping of :class:`~models.forecast.types.Update` results into the JSON of the
``forecasts`` and ``alerts`` topics (core.events.Forecast and Alert) and of the API's
latest-forecast answer; and the per-minute business series the scorers derive from the
transactions they score.

>>> totals = minute_totals([(60.5, 10.0, False), (61.0, 5.0, True), (130.0, 1.0, False)])
>>> totals
{1: [2, 15.0, 1], 2: [1, 1.0, 0]}
>>> [(sid, p["value"]) for sid, p in derived_payloads(1, *totals[1])]
[('riverwatch.tx_per_min', 2.0), ('riverwatch.amount_per_min', 15.0), \
('riverwatch.fraud_alert_rate', 0.5)]
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from riverwatch.models.forecast.types import Step, Update

TX_PER_MIN = "riverwatch.tx_per_min"
AMOUNT_PER_MIN = "riverwatch.amount_per_min"
FRAUD_ALERT_RATE = "riverwatch.fraud_alert_rate"


def iso(epoch: float) -> str:
    """An epoch as an ISO 8601 UTC string."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _points(steps: Iterable[Step]) -> list[dict[str, Any]]:
    return [
        {"timestamp": iso(s.timestamp), "value": s.value, "lower": s.lower, "upper": s.upper}
        for s in steps
    ]


def forecast_message(series_id: str, up: Update) -> dict[str, Any]:
    """The ``forecasts`` record (core.events.Forecast) made after applying a point."""
    return {
        "series_id": series_id,
        "timestamp": iso(up.timestamp),
        "model": up.model,
        "points": _points(up.steps),
        "anomaly": up.anomaly,
    }


def latest_message(
    series_id: str,
    as_of: float,
    model: str | None,
    steps: Iterable[Step],
    per_step: Iterable[tuple[str | None, float | None]] = (),
) -> dict[str, Any]:
    """The latest forecast as ``GET /v1/forecasts/{series_id}`` serves it.

    ``per_step``: for each step, the candidate serving it and the realised coverage of that
    step's intervals so far (SeriesForecaster.step_info); each point carries its own.
    """
    points = _points(steps)
    for point, (served, coverage) in zip(points, per_step, strict=False):
        point["model"], point["coverage"] = served, coverage
    return {"series_id": series_id, "as_of": iso(as_of), "model": model, "points": points}


def alert_message(series_id: str, up: Update) -> dict[str, Any]:
    """The ``forecast_anomaly`` alert (core.events.Alert) for an update that starts one.

    The alert id is derived from the series and the point's timestamp, so a replayed batch
    republishes the same id and subscribers' dedup drops it.
    """
    lo, hi = up.expected or (float("nan"), float("nan"))
    when = iso(up.timestamp)
    forecast = up.forecast if up.forecast is not None else float("nan")
    return {
        "alert_id": f"forecast-{series_id}-{int(up.timestamp * 1000)}",
        "kind": "forecast_anomaly",
        "severity": "warning",
        "subject": series_id,
        "message": f"{series_id} at {when}: observed {up.value:.6g}, expected {lo:.6g} to "
        f"{hi:.6g} (forecast {forecast:.6g}, model {up.model})",
        "details": {
            "series_id": series_id,
            "timestamp": when,
            "observed": up.value,
            "expected_lower": lo,
            "expected_upper": hi,
            "forecast": up.forecast,
            "model": up.model,
        },
        "timestamp": when,
    }


def minute_totals(scored: Iterable[tuple[float, float, bool]]) -> dict[int, list[Any]]:
    """Per event-time minute (epoch // 60): [transactions, amount sum, fraud alerts]."""
    out: dict[int, list[Any]] = {}
    for epoch, amount, alerted in scored:
        tot = out.setdefault(int(epoch // 60), [0, 0.0, 0])
        tot[0] += 1
        tot[1] += amount
        tot[2] += int(alerted)
    return out


def derived_payloads(
    minute: int, count: int, amount: float, alerts: int
) -> list[tuple[str, dict[str, Any]]]:
    """The three MetricPoint payloads (series_id, body) of one closed minute."""
    ts = iso(minute * 60.0)
    rate = alerts / count if count else 0.0
    return [
        (sid, {"series_id": sid, "timestamp": ts, "value": float(v)})
        for sid, v in ((TX_PER_MIN, count), (AMOUNT_PER_MIN, amount), (FRAUD_ALERT_RATE, rate))
    ]
