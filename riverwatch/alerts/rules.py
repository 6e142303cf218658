"""Pure rules of alert delivery: filters, dedup and cooldown, retry backoff, retry horizon.

No I/O here: the dispatcher (streams/alert_dispatcher.py) applies these rules to what it reads
from Kafka and Redis, and the Redis gate (alerts/store.py) mirrors :class:`Gate` in one Lua
script.

>>> f = Filters.from_dict({"kinds": ["drift"], "min_severity": "warning"})
>>> f.matches("drift", "critical", "amount"), f.matches("drift", "info", "amount")
(True, False)
>>> g = Gate(cooldowns={"drift": 60.0})
>>> [g.admit(i, "drift", "amount", "warning", now=t) for i, t in (("a", 0), ("a", 1), ("b", 2))]
['stored', 'duplicate', 'cooldown']
>>> g.admit("c", "drift", "amount", "critical", now=3)  # an escalation is not held back
'stored'
"""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from riverwatch.alerts.signing import message_id
from riverwatch.core.outputs import ALERT_KINDS, SEVERITIES

KINDS = ALERT_KINDS


def severity_rank(severity: str) -> int:
    """0 for info, 1 for warning, 2 for critical; ValueError for anything else."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise ValueError(f"unknown severity {severity!r}; one of {', '.join(SEVERITIES)}") from None


@dataclass(frozen=True)
class Filters:
    """Which alerts a subscriber wants: kinds (empty = all), a minimum severity, subjects.

    Subjects are exact names or fnmatch patterns (``feature:*``); empty means every subject.
    """

    kinds: frozenset[str] = frozenset()
    min_severity: str = "info"
    subjects: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Filters:
        """Build from the stored/JSON form; None or missing keys mean "no restriction"."""
        raw = raw or {}
        kinds = frozenset(raw.get("kinds") or ())
        unknown = sorted(kinds - set(KINDS))
        if unknown:
            raise ValueError(f"unknown alert kind {', '.join(unknown)}; one of {', '.join(KINDS)}")
        min_severity = raw.get("min_severity") or "info"
        severity_rank(min_severity)
        return cls(kinds, min_severity, tuple(raw.get("subjects") or ()))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (sorted kinds, so equal filters serialize equally)."""
        return {
            "kinds": sorted(self.kinds),
            "min_severity": self.min_severity,
            "subjects": list(self.subjects),
        }

    def matches(self, kind: str, severity: str, subject: str) -> bool:
        """True when an alert of this kind, severity and subject passes every filter."""
        if self.kinds and kind not in self.kinds:
            return False
        if severity_rank(severity) < severity_rank(self.min_severity):
            return False
        return not self.subjects or any(fnmatch.fnmatchcase(subject, p) for p in self.subjects)


def cooldown_for(kind: str, default_s: float, by_kind: Mapping[str, float]) -> float:
    """The cooldown of ``kind`` in seconds (0 = every alert of it is delivered)."""
    return by_kind.get(kind, default_s)


@dataclass
class Gate:
    """In-memory dedup and cooldown, the reference for the Redis gate (unit tests only).

    An alert_id passes once. Within a kind's cooldown after a stored alert for the same
    (kind, subject), another alert is held back unless it is more severe (an escalation).
    """

    default_s: float = 0.0
    cooldowns: Mapping[str, float] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)
    _last: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)

    def admit(self, alert_id: str, kind: str, subject: str, severity: str, now: float) -> str:
        """``stored``, ``duplicate`` or ``cooldown`` (only ``stored`` alerts are delivered)."""
        if alert_id in self._seen:
            return "duplicate"
        self._seen.add(alert_id)
        cool = cooldown_for(kind, self.default_s, self.cooldowns)
        rank = severity_rank(severity)
        if cool > 0:
            last = self._last.get((kind, subject))
            if last is not None and now < last[0] + cool and rank <= last[1]:
                return "cooldown"
            self._last[(kind, subject)] = (now, rank)
        return "stored"


def backoff_delay(
    failures: int, base_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after ``failures`` consecutive failures (>= 1): exponential, jittered.

    The ceiling is ``min(max_s, base_s * 2**(failures-1))``; the delay is drawn uniformly from
    its upper half, so retries spread out without ever collapsing to zero.

    >>> backoff_delay(1, 1.0, 60.0, random.Random(0)) <= 1.0
    True
    """
    if failures < 1:
        return 0.0
    ceiling = min(max_s, base_s * 2 ** min(failures - 1, 60))
    return (rng or random).uniform(ceiling / 2, ceiling)


def retry_exhausted(attempts: int, age_s: float, max_attempts: int, horizon_s: float) -> bool:
    """True when a pending delivery has had its attempts or outlived the retry horizon.

    >>> retry_exhausted(3, 10.0, 5, 60.0), retry_exhausted(5, 10.0, 5, 60.0)
    (False, True)
    """
    return attempts >= max_attempts or age_s >= horizon_s


def digest_due(oldest_age_s: float, interval_s: float, full: bool) -> bool:
    """True when a digest should go: its oldest alert has waited an interval, or it is full.

    A burst thus becomes one POST per interval; a full batch goes at once so a backlog drains.

    >>> digest_due(0.5, 1.0, False), digest_due(1.0, 1.0, False), digest_due(0.0, 1.0, True)
    (False, True, True)
    """
    return full or oldest_age_s >= interval_s


def digest_body(alerts: Iterable[bytes]) -> bytes:
    """A JSON list of already-serialized alerts (no re-encoding: the bytes are what is signed).

    >>> digest_body([b'{"a":1}', b'{"b":2}'])
    b'[{"a":1},{"b":2}]'
    """
    return b"[" + b",".join(alerts) + b"]"


def alert_message_id(body: bytes) -> str:
    """The ``webhook-id`` of one queued alert, derived from its ``alert_id``.

    Raises ValueError ("not an alert: ...") when ``body`` is not a JSON object with an
    ``alert_id``: no retry can send it, so the sender parks it.

    >>> alert_message_id('{"alert_id": "café"}'.encode()) == message_id("café")
    True
    """
    try:
        alert = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not an alert: not JSON ({exc})") from None
    if not isinstance(alert, dict) or not isinstance(alert.get("alert_id"), str | int):
        raise ValueError("not an alert: no alert_id")
    return message_id(str(alert["alert_id"]))


def digest_message_id(sub_id: str, first: str, last: str) -> str:
    """The ``webhook-id`` of a digest: stable while its batch is retried, header-safe.

    >>> digest_message_id("sub_1", "1-0", "2-0")[:7]
    'digest_'
    """
    return message_id(sub_id, first, last, prefix="digest")


def status_outcome(status: int) -> str:
    """What a receiver's answer means: ``delivered`` (2xx), ``gone`` (410: stop), else ``retry``.

    Status 0 stands for no answer at all (refused, timed out, unsafe address).

    >>> [status_outcome(s) for s in (204, 410, 500, 301, 0)]
    ['delivered', 'gone', 'retry', 'retry', 'retry']
    """
    if 200 <= status < 300:
        return "delivered"
    return "gone" if status == 410 else "retry"


@dataclass
class RetryState:
    """Retry bookkeeping of one subscription: how long to wait, when to give up on an alert.

    ``failures`` counts consecutive failed POSTs whatever the alert: it sets the backoff, so a
    receiver that stays down is probed at the capped pace instead of once per queued alert.
    ``tries`` counts the POSTs of the current head of the queue, bounded by ``max_attempts``.

    >>> r = RetryState(1.0, 8.0, max_attempts=2, horizon_s=60.0)
    >>> r.failed("a", age_s=1.0)[0], r.failed("a", age_s=2.0)[0], r.failed("b", age_s=3.0)[0]
    (False, True, False)
    >>> r.failures
    3
    """

    base_s: float
    max_s: float
    max_attempts: int
    horizon_s: float
    failures: int = 0
    tries: int = 0
    head: str = ""

    def succeeded(self) -> None:
        """The receiver took a POST: the next failure starts the backoff from the beginning."""
        self.failures = self.tries = 0
        self.head = ""

    def failed(
        self, head: str, age_s: float, rng: random.Random | None = None
    ) -> tuple[bool, float]:
        """Count a failed POST of ``head``; return (give up on it now, seconds to wait)."""
        if head != self.head:
            self.head, self.tries = head, 0
        self.tries += 1
        self.failures += 1
        give_up = retry_exhausted(self.tries, age_s, self.max_attempts, self.horizon_s)
        return give_up, backoff_delay(self.failures, self.base_s, self.max_s, rng)
