"""A webhook subscription as stored in Redis (the subscriptions hash of
:mod:`riverwatch.alerts.store`): its filters, status and signing secrets, the previous one
kept through a rotation's overlap.

>>> s = Subscription("sub_1", "https://example.com/h", {}, None, "whsec_x", "2026-01-01")
>>> "secret" in s.public(), Subscription.from_json(s.to_json()) == s
(False, True)
>>> r = s.rotated("whsec_y", now=100.0, overlap_s=60.0)
>>> r.signing_secrets(now=159.0), r.signing_secrets(now=160.0), "previous_secret" in r.public()
(['whsec_y', 'whsec_x'], ['whsec_y'], False)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson


@dataclass(frozen=True)
class Subscription:
    """A webhook subscription as stored; ``secret`` is for signing and is never shown again."""

    id: str
    url: str
    filters: dict[str, Any]
    digest_interval_s: float | None
    secret: str
    created_at: str
    status: str = "active"
    disabled_reason: str | None = None
    # The secret before the last rotation, still signing until ``previous_secret_until``.
    previous_secret: str | None = None
    previous_secret_until: float | None = None  # epoch seconds

    def to_json(self) -> bytes:
        """The JSON stored in the subscriptions hash."""
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Subscription:
        """Parse the stored JSON."""
        return cls(**orjson.loads(raw))

    def public(self) -> dict[str, Any]:
        """Everything but the secrets (what GET /v1/subscriptions shows)."""
        out = asdict(self)
        del out["secret"], out["previous_secret"], out["previous_secret_until"]
        return out

    def signing_secrets(self, now: float) -> list[str]:
        """The secrets a delivery at ``now`` is signed with: the current one first, then the
        previous one while a rotation's overlap lasts (receivers may still hold it)."""
        until = self.previous_secret_until
        if self.previous_secret and until is not None and now < until:
            return [self.secret, self.previous_secret]
        return [self.secret]

    def rotated(self, secret: str, now: float, overlap_s: float) -> Subscription:
        """This subscription signing with ``secret``, and with the current one for
        ``overlap_s`` more seconds (a secret rotated before is dropped)."""
        if overlap_s <= 0:
            return replace(self, secret=secret, previous_secret=None, previous_secret_until=None)
        return replace(
            self, secret=secret, previous_secret=self.secret, previous_secret_until=now + overlap_s
        )
