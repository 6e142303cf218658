"""GET /v1/forecasts/{series_id} and GET /v1/series: what the forecasting workers stored."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from riverwatch.api.deps import ReadKey, ResourcesDep
from riverwatch.api.schemas import Problem
from riverwatch.models.forecast.messages import iso

router = APIRouter(prefix="/v1", tags=["forecasts"])
MAX_HORIZON = 1440  # the largest RIVERWATCH_FORECAST_HORIZON accepted


class ForecastPointPublic(BaseModel):
    """One step ahead: the forecast and its conformal interval."""

    timestamp: str
    value: float
    lower: float
    upper: float
    model: str | None = Field(
        None,
        description="The candidate serving this step: each step is served by the candidate "
        "with the lowest rolling error at that many steps ahead (seasonal_naive, naive, "
        "damped, damped_mul, theta, theta_mul, holt, holt_winters, holt_winters_mul, "
        "snarimax, calendar_regression, calendar_regression_diff, mean, or combination: the "
        "inverse-error weighted mean of the best three at that step).",
    )
    coverage: float | None = Field(
        None,
        description="Realised coverage so far of this step's intervals: the share of "
        "observations that fell inside the interval published this many steps before them "
        "(null: none scored yet, or a step between the scored ones: 1-12, 18, 27, 41, 60).",
    )


class ObservedPointPublic(BaseModel):
    """A point of the series as it was applied."""

    timestamp: str
    value: float


class ForecastPublic(BaseModel):
    """The latest forecast of a series."""

    series_id: str
    as_of: str = Field(description="Timestamp of the last point applied to the series.")
    model: str | None = Field(description="The candidate serving the one-step forecast.")
    points: list[ForecastPointPublic]
    observed: list[ObservedPointPublic] = Field(
        default_factory=list,
        description="The series' last applied points (as many as the horizon), oldest first.",
    )


class SeriesPublic(BaseModel):
    """A series the forecasters know."""

    series_id: str
    model: str | None = Field(description="Serving model; null while the series warms up.")
    rolling_mae: float | None = Field(description="Exponentially weighted one-step MAE.")
    coverage: float | None = Field(description="Realised coverage of one-step intervals.")
    points: int
    late: int = Field(description="Late or duplicate points ignored.")
    anomalies: int = Field(description="Points outside their anomaly band.")
    alerts: int = Field(description="forecast_anomaly alerts published.")
    period: int | None = Field(description="Seasonal period in points (1: none).")
    horizon: int
    as_of: str | None


class SeriesList(BaseModel):
    """Every known series, by id."""

    series: list[SeriesPublic]


def _public(summary: dict[str, object]) -> SeriesPublic:
    as_of = summary.get("as_of")
    return SeriesPublic.model_validate(
        {**summary, "as_of": iso(as_of) if isinstance(as_of, int | float) else None}
    )


@router.get(
    "/forecasts/{series_id}",
    response_model=ForecastPublic,
    responses={401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem}},
    summary="Read the latest forecast of a metric series",
)
async def get_forecast(
    series_id: Annotated[str, Path(min_length=1, max_length=128)],
    key: ReadKey,
    resources: ResourcesDep,
    horizon: Annotated[
        int | None, Query(ge=1, le=MAX_HORIZON, description="Steps to return (default: all).")
    ] = None,
) -> ForecastPublic:
    """The forecast made after the series' last applied point, ``horizon`` steps of it.

    404 for a series never seen or still warming up; 422 when ``horizon`` exceeds the steps
    the series forecasts (RIVERWATCH_FORECAST_HORIZON when it started).
    """
    names = resources.names
    p = resources.redis.pipeline(transaction=False)
    p.hget(names.forecast_state(series_id), "latest")
    p.hget(names.forecast_series(), series_id)
    p.lrange(names.forecast_observed(series_id), 0, -1)
    raw, summary, observed = await p.execute()
    if raw is None:
        if summary is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"unknown series '{series_id}': no metric point for it has been applied yet "
                "(send points with POST /v1/metrics)",
            )
        seen = orjson.loads(summary)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"series '{series_id}' is warming up: {seen.get('points')} points so far; "
            "forecasts start after a few points",
        )
    forecast = ForecastPublic.model_validate(orjson.loads(raw))
    forecast.observed = [
        ObservedPointPublic(timestamp=iso(t), value=v) for t, v in map(orjson.loads, observed)
    ]
    if horizon is not None:
        if horizon > len(forecast.points):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"horizon {horizon} is beyond the {len(forecast.points)} steps series "
                f"'{series_id}' forecasts (RIVERWATCH_FORECAST_HORIZON)",
            )
        forecast.points = forecast.points[:horizon]
    return forecast


@router.get(
    "/series",
    response_model=SeriesList,
    responses={401: {"model": Problem}, 403: {"model": Problem}},
    summary="List the metric series with their serving model and rolling error",
)
async def list_series(key: ReadKey, resources: ResourcesDep) -> SeriesList:
    """Every series the forecasters have applied a point to, sorted by id."""
    raw = await resources.redis.hgetall(resources.names.forecast_series())
    rows = [_public(orjson.loads(v)) for _, v in sorted(raw.items())]
    return SeriesList(series=rows)
