"""The list and map settings: parsed once when the Settings are built, from the environment's
strings as before or from typed values; a bad value is a ValidationError naming the field."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from riverwatch.core.outputs import ALERT_KINDS, Alert, AlertKind
from riverwatch.core.roles import Role
from riverwatch.core.settings import Settings, to_env

# field -> (environment string, the typed value it means)
PARSED: dict[str, tuple[str, Any]] = {
    "worker_roles": (" monitoring, forecasting ", frozenset({Role.MONITORING, Role.FORECASTING})),
    "feature_attributes": ("device_risk, is_vip,,", ("device_risk", "is_vip")),
    "monitor_drift_exclude": ("hour, is_weekend", ("hour", "is_weekend")),
    "alert_cooldown_kinds": (
        " fraud=0, drift=120 ",
        {AlertKind.FRAUD: 0.0, AlertKind.DRIFT: 120.0},
    ),
    "forecast_seasonality": ("bench.air*=12, other=7", {"bench.air*": 12, "other": 7}),
}

# field -> (a bad environment string, what the message must say)
BAD: dict[str, tuple[str, str]] = {
    "worker_roles": ("scoring,sorting", "unknown role 'sorting'"),
    "feature_attributes": ("a,a", "names an attribute twice"),
    "alert_cooldown_kinds": ("drift=soon", "not a number"),
    "forecast_seasonality": ("a=twelve", "series_id=period"),
}


@pytest.mark.parametrize("field", sorted(PARSED))
def test_the_environment_string_is_parsed_into_the_typed_value(
    field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, want = PARSED[field]
    monkeypatch.setenv(f"RIVERWATCH_{field.upper()}", text)
    assert getattr(Settings(), field) == want
    assert getattr(Settings(**{field: text}), field) == want  # an override's string too
    assert getattr(Settings(**{field: want}), field) == want  # and the typed value


@pytest.mark.parametrize("field", sorted(BAD))
def test_a_bad_value_is_a_validation_error_naming_the_field(
    field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, message = BAD[field]
    monkeypatch.setenv(f"RIVERWATCH_{field.upper()}", text)
    with pytest.raises(ValidationError) as err:
        Settings()
    (e,) = err.value.errors()
    assert e["loc"] == (field,) and message in e["msg"]
    assert f"RIVERWATCH_{field.upper()}" in e["msg"]


def test_a_list_of_other_than_names_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        Settings(monitor_drift_exclude=[1])
    assert err.value.errors()[0]["loc"][0] == "monitor_drift_exclude"


def test_an_unknown_role_names_the_field_and_every_allowed_role() -> None:
    with pytest.raises(ValidationError) as err:
        Settings(worker_roles="scoring,dreaming")
    text = str(err.value)
    assert "worker_roles" in text and "unknown role 'dreaming'" in text
    assert "known: all, " + ", ".join(r.value for r in Role) in text
    with pytest.raises(ValidationError, match="RIVERWATCH_WORKER_ROLES is empty"):
        Settings(worker_roles=" , ")
    with pytest.raises(ValidationError, match="unknown role 'all'"):
        Settings(worker_roles="all,scoring")  # 'all' alone, as before


def test_all_roles_is_every_role() -> None:
    assert Settings().worker_roles == Settings(worker_roles="all").worker_roles == frozenset(Role)


@pytest.mark.parametrize("spec", ["frud=0", "drift", {"frud": 0}])
def test_an_unknown_alert_kind_names_the_field_and_every_kind(spec: Any) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(alert_cooldown_kinds=spec)
    text = str(err.value)
    assert "alert_cooldown_kinds" in text and "RIVERWATCH_ALERT_COOLDOWN_KINDS" in text
    assert "'kind=seconds'" in text and "known: " + ", ".join(ALERT_KINDS) in text


def test_a_negative_cooldown_is_refused() -> None:
    with pytest.raises(ValidationError, match="negative cooldown"):
        Settings(alert_cooldown_kinds={"drift": -1})


def test_the_defaults_are_the_strings_they_replace() -> None:
    s = Settings()
    assert s.feature_attributes == () and s.forecast_seasonality == {}
    assert s.monitor_drift_exclude == ("hour", "is_weekend", "is_night")
    assert s.alert_cooldown_kinds == {
        k: 0.0 for k in ("fraud", "retrain", "drift", "performance", "fairness")
    }


def test_a_pattern_given_twice_keeps_its_first_period() -> None:
    assert Settings(forecast_seasonality="a=3,b=5,a=7").forecast_seasonality == {"a": 3, "b": 5}


def test_to_env_writes_the_strings_a_child_parses_back(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(**{field: text for field, (text, _) in PARSED.items()})
    env = to_env(s)
    assert env["RIVERWATCH_WORKER_ROLES"] == "forecasting,monitoring"
    assert env["RIVERWATCH_FEATURE_ATTRIBUTES"] == "device_risk,is_vip"
    assert env["RIVERWATCH_ALERT_COOLDOWN_KINDS"] == "fraud=0.0,drift=120.0"
    assert env["RIVERWATCH_FORECAST_SEASONALITY"] == "bench.air*=12,other=7"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == s


def test_settings_stay_hashable_with_map_fields() -> None:
    a, b = Settings(forecast_seasonality="a=3"), Settings(forecast_seasonality={"a": 3})
    assert a == b and hash(a) == hash(b) and len({a, b, Settings()}) == 2


def test_an_alert_kind_is_its_name_in_json() -> None:
    alert = Alert(
        alert_id="a",
        kind="drift",  # type: ignore[arg-type]
        severity="info",
        subject="x",
        message="m",
        timestamp="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
    )
    assert alert.kind is AlertKind.DRIFT and alert.kind == "drift"
    assert orjson.loads(orjson.dumps(alert.model_dump()))["kind"] == "drift"
    assert alert.model_dump(mode="json")["kind"] == "drift"
    with pytest.raises(ValidationError):
        Alert.model_validate({**alert.model_dump(), "kind": "gossip"})
