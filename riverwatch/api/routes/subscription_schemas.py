"""Request and response bodies of /v1/subscriptions (webhook subscriptions to alerts)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from riverwatch.core.outputs import AlertKind, Severity

Kind = AlertKind
Subject = Annotated[str, Field(min_length=1, max_length=256)]


class SubscriptionFilters(BaseModel):
    """Which alerts to send; an empty list means no restriction."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[Kind] = Field(default_factory=list, description="Alert kinds; empty: every kind.")
    min_severity: Annotated[Severity, Field(description="Send this severity and above.")] = "info"
    subjects: list[Subject] = Field(
        default_factory=list,
        max_length=100,
        description="Exact subjects or fnmatch patterns (`amount*`); empty: every subject.",
    )


class SubscriptionCreate(BaseModel):
    """A webhook to register."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2048,
        description="http(s) URL; refused when it resolves to a loopback, private, link-local "
        "or cloud-metadata address.",
    )
    filters: SubscriptionFilters = Field(default_factory=lambda: SubscriptionFilters())
    digest_interval_s: float | None = Field(
        None, ge=1, le=86_400, description="Batch alerts into one POST (a JSON list) per interval."
    )


class SubscriptionStats(BaseModel):
    """Delivery counters of one subscription (alerts, except ``attempts``: POSTs)."""

    delivered: int
    failed: int = Field(description="Given up on: past the attempts or the retry horizon.")
    dropped: int = Field(
        description="Pushed out of a full queue (RIVERWATCH_WEBHOOK_QUEUE_MAXLEN)."
    )
    pending: int = Field(description="Queued, not delivered yet.")
    parked: int = Field(
        0, description="Set aside as unsendable (not an alert, or a request no retry can send)."
    )
    attempts: int
    last_status: int | None = Field(None, description="HTTP status of the last POST; 0: no answer.")
    last_error: str | None = None
    last_failure: str | None = None
    last_parked_reason: str | None = None
    last_attempt_at: str | None = None
    last_delivered_at: str | None = None


class SubscriptionPublic(BaseModel):
    """A subscription as listed: never with its secret."""

    id: str
    url: str
    filters: SubscriptionFilters
    digest_interval_s: float | None
    created_at: str
    status: Literal["active", "disabled"]
    disabled_reason: str | None
    stats: SubscriptionStats


class SubscriptionCreated(SubscriptionPublic):
    """The new subscription with its signing secret, shown this once."""

    secret: str = Field(description="`whsec_...`: verify each webhook's signature with it.")


class SecretRotated(BaseModel):
    """A subscription's new signing secret, shown this once."""

    id: str
    secret: str = Field(description="`whsec_...`: the new signing secret.")
    previous_secret_expires_at: str | None = Field(
        description="Until then every delivery also carries a signature with the previous "
        "secret (the `webhook-signature` header lists both); null: no overlap."
    )


class ParkedAlert(BaseModel):
    """An alert the sender set aside because no retry could send it."""

    parked_id: str
    entry: str = Field(description="Its id in the subscription's queue.")
    reason: str
    at: str = Field(description="When it was parked (epoch seconds).")
    alert: str = Field(description="The queued alert as stored (undecodable bytes replaced).")


class Requeued(BaseModel):
    """A parked alert back in its subscription's queue."""

    parked_id: str
    entry: str = Field(description="Its new id in the queue (it is sent after those queued).")
