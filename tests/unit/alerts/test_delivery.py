"""Pure delivery rules: filters, dedup and cooldown, backoff, retry horizon, digests."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from riverwatch.alerts.rules import (
    Filters,
    Gate,
    RetryState,
    backoff_delay,
    cooldown_for,
    digest_body,
    digest_due,
    retry_exhausted,
    severity_rank,
)
from riverwatch.core.settings.types import parse_kind_seconds


def test_filters_by_kind_severity_and_subject_pattern() -> None:
    f = Filters.from_dict({"kinds": ["drift", "fairness"], "subjects": ["amount", "group:*"]})
    assert f.matches("drift", "info", "amount")
    assert f.matches("fairness", "critical", "group:age_band")
    assert not f.matches("fraud", "critical", "amount")
    assert not f.matches("drift", "warning", "terminal_risk")
    everything = Filters.from_dict(None)
    assert everything.matches("system", "info", "anything")
    critical = Filters.from_dict({"min_severity": "critical"})
    assert not critical.matches("fraud", "warning", "x") and critical.matches(
        "fraud", "critical", "x"
    )
    assert Filters.from_dict(f.to_dict()) == f


def test_filters_refuse_unknown_kinds_and_severities() -> None:
    with pytest.raises(ValueError, match="unknown alert kind"):
        Filters.from_dict({"kinds": ["drfit"]})
    with pytest.raises(ValueError, match="unknown severity"):
        Filters.from_dict({"min_severity": "urgent"})
    assert [severity_rank(s) for s in ("info", "warning", "critical")] == [0, 1, 2]


def test_dedup_passes_each_alert_id_once() -> None:
    g = Gate()
    assert [g.admit("a", "fraud", "e1", "critical", now=t) for t in (0, 1, 1e9)] == [
        "stored",
        "duplicate",
        "duplicate",
    ]


def test_cooldown_holds_repeats_per_kind_and_subject_until_it_expires() -> None:
    g = Gate(default_s=60.0)
    assert g.admit("1", "drift", "amount", "warning", now=0) == "stored"
    assert g.admit("2", "drift", "amount", "warning", now=59.9) == "cooldown"
    assert g.admit("3", "drift", "amount", "info", now=30) == "cooldown"
    assert g.admit("4", "drift", "hour", "warning", now=30) == "stored"  # another subject
    assert g.admit("5", "performance", "amount", "warning", now=30) == "stored"  # another kind
    assert g.admit("6", "drift", "amount", "warning", now=60) == "stored"  # cooldown over
    assert g.admit("7", "drift", "amount", "critical", now=61) == "stored"  # escalation
    assert g.admit("8", "drift", "amount", "critical", now=62) == "cooldown"


def test_fraud_and_retrain_alerts_have_no_cooldown_by_default() -> None:
    by_kind = parse_kind_seconds("fraud=0,retrain=0")  # the default of the setting
    g = Gate(default_s=300.0, cooldowns=by_kind)
    outcomes = [g.admit(f"f{i}", "fraud", "card-1", "critical", now=i) for i in range(5)]
    assert outcomes == ["stored"] * 5
    actions = [g.admit(f"r{i}", "retrain", "batch", "info", now=i) for i in range(3)]
    assert actions == ["stored"] * 3
    assert cooldown_for("drift", 300.0, by_kind) == 300.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fraud", "kind=seconds"),
        ("frud=0", "kind=seconds"),
        ("drift=soon", "not a number"),
        ("drift=-1", "negative"),
    ],
)
def test_cooldown_spec_errors_name_the_variable(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"RIVERWATCH_ALERT_COOLDOWN_KINDS.*{message}"):
        parse_kind_seconds(spec)
    assert parse_kind_seconds("") == {}


@given(
    failures=st.integers(1, 200),
    base=st.floats(0.01, 10),
    cap=st.floats(0.01, 3600),
    seed=st.integers(0, 2**32),
)
def test_backoff_is_bounded_and_jittered(failures: int, base: float, cap: float, seed: int) -> None:
    d = backoff_delay(failures, base, cap, random.Random(seed))
    ceiling = min(cap, base * 2 ** (failures - 1))
    assert ceiling / 2 <= d <= ceiling <= cap


def test_backoff_doubles_then_caps_and_spreads_out() -> None:
    rng = random.Random(1)
    ceilings = [max(backoff_delay(n, 1.0, 10.0, rng) for _ in range(200)) for n in range(1, 7)]
    assert [round(c) for c in ceilings] == [1, 2, 4, 8, 10, 10]
    assert len({round(backoff_delay(3, 1.0, 10.0, rng), 6) for _ in range(20)}) > 1
    assert backoff_delay(0, 1.0, 10.0) == 0.0


def test_retry_gives_up_at_the_attempt_bound_or_the_horizon() -> None:
    assert not retry_exhausted(1, 0.0, 3, 60.0)
    assert retry_exhausted(3, 0.0, 3, 60.0)
    assert retry_exhausted(1, 60.0, 3, 60.0)
    state = RetryState(1.0, 8.0, max_attempts=3, horizon_s=3600.0)
    results = [state.failed("head", age_s=i, rng=random.Random(0)) for i in range(3)]
    assert [give_up for give_up, _ in results] == [False, False, True]
    assert all(0.5 * 2**i <= d <= 2**i for i, (_, d) in enumerate(results))
    give_up, delay = state.failed("next", age_s=0)  # a new head: new attempts, same backoff
    assert not give_up and delay >= 4.0
    state.succeeded()
    assert state.failures == 0 and state.failed("x", 0, random.Random(0))[1] <= 1.0


def test_digest_goes_once_its_oldest_alert_waited_an_interval() -> None:
    assert not digest_due(0.2, 5.0, full=False)
    assert digest_due(5.0, 5.0, full=False)
    assert digest_due(0.0, 5.0, full=True)
    body = digest_body([b'{"alert_id":"a"}', b'{"alert_id":"b"}'])
    assert [a["alert_id"] for a in orjson.loads(body)] == ["a", "b"]
    assert orjson.loads(digest_body([])) == []
