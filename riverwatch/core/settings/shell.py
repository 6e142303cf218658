"""The shell's knobs: the `up` supervisor's restart budget and the demo."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SuperviseSettings(BaseModel):
    """The restart budget of `riverwatch up`'s children."""

    supervise_max_restarts: int = Field(
        5,
        ge=1,
        description="RIVERWATCH_SUPERVISE_MAX_RESTARTS: restarts of one child `up` allows per "
        "RIVERWATCH_SUPERVISE_WINDOW_S before it reports the child as crash-looping.",
    )
    supervise_window_s: float = Field(
        60.0,
        gt=0,
        description="RIVERWATCH_SUPERVISE_WINDOW_S: window of the restart budget; a child that "
        "stays up this long starts again with a clean record.",
    )
    supervise_backoff_max_s: float = Field(
        30.0,
        gt=0,
        description="RIVERWATCH_SUPERVISE_BACKOFF_MAX_S: longest wait before restarting a child "
        "(the wait doubles with each exit in the window, from 0.5 s).",
    )


class DemoSettings(BaseModel):
    """The demo (`riverwatch up --demo`, shell/demo.py)."""

    demo_customers: int = Field(
        1000,
        ge=10,
        description="RIVERWATCH_DEMO_CUSTOMERS: simulated customers of the demo (twice as "
        "many terminals; about 2 transactions per customer and event day).",
    )
    demo_seed: int = Field(0, description="RIVERWATCH_DEMO_SEED: the demo simulator's seed.")
    demo_backfill_days: float = Field(
        40.0,
        ge=0,
        description="RIVERWATCH_DEMO_BACKFILL_DAYS: event days the demo sends first as fast "
        "as the system takes them (past the monitor's warm-up), before a first retrain.",
    )
    demo_days_per_minute: float = Field(
        2.0,
        gt=0,
        description="RIVERWATCH_DEMO_DAYS_PER_MINUTE: event days per wall minute after the "
        "backfill.",
    )
    demo_drift_after_s: float = Field(
        60.0,
        ge=0,
        description="RIVERWATCH_DEMO_DRIFT_AFTER_S: wall seconds the demo stays calm before it "
        "injects its drift episode.",
    )
    demo_drift_card_share: float = Field(
        0.03,
        ge=0,
        le=1,
        description="RIVERWATCH_DEMO_DRIFT_CARD_SHARE: the episode's new fraud pattern: this "
        "share of the cards gets a card-testing burst each event day.",
    )
    demo_drift_region: str = Field(
        "south",
        description="RIVERWATCH_DEMO_DRIFT_REGION: the region whose customers' spending "
        "shifts in the episode ('' for none).",
    )
    demo_drift_spend_factor: float = Field(
        1.5,
        gt=0,
        description="RIVERWATCH_DEMO_DRIFT_SPEND_FACTOR: that region's legitimate amounts are "
        "multiplied by this in the episode.",
    )
