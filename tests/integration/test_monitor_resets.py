"""The monitor follows the learner's resets of the online model (through Redis)."""

from __future__ import annotations

import pytest

from riverwatch.context import Context
from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.monitors.windows import iso
from riverwatch.stores.offline import OfflineStore
from riverwatch.streams.monitor.runner import Monitor
from tests.support.builders import labeled_frame

pytestmark = pytest.mark.integration


def tracked(m: Monitor) -> set[str]:
    return {row["model"] for row in m.concept.report()}


def test_a_reset_online_model_gets_fresh_drift_detectors(settings: Settings) -> None:
    r = redis_client(redis_config(settings))
    m = Monitor(Context.from_settings(settings), r, "test")
    for i in range(50):
        for model in ("online", "batch"):
            m.concept.update(model, float(i % 2), {"region": "north"}, float(i))
    m._follow_resets()  # the first look only learns the count
    assert tracked(m) == {"online", "batch"}
    r.hincrby(Names(settings.topic_prefix).learner_stats(), "resets", 1)
    m._follow_resets()
    assert tracked(m) == {"batch"}  # the online model's error stream starts afresh
    m.concept.update("online", 0.0, None, 60.0)
    m._follow_resets()  # no new reset: nothing forgotten
    assert tracked(m) == {"online", "batch"}
    r.close()


def test_a_reference_request_restarts_the_reference_from_the_monitors_time(
    settings: Settings,
) -> None:
    r = redis_client(redis_config(settings))
    m = Monitor(Context.from_settings(settings), r, "test")
    m.core.begin(0.0)
    m.core.as_of = 40 * 86_400.0
    assert m.core.status()["message"] == "warming up (reference from 1970-02-07T00:00:00+00:00)"
    r.set(Names(settings.topic_prefix).monitor("reference_request"), b'{"by": "test"}')
    m._follow_reference()
    assert m.core.status()["message"] == "warming up (reference from 1970-02-10T00:00:00+00:00)"
    assert r.get(Names(settings.topic_prefix).monitor("reference_request")) is None  # taken
    r.close()


class _Registry:
    """The two registry reads ``_follow_reference`` makes (no artifacts needed)."""

    def __init__(self) -> None:
        self.token, self.name = "1", "batch-1"
        self.span = (14 * 86_400.0, 28 * 86_400.0)

    def stage_token(self) -> str:
        return self.token

    def champion(self) -> object:
        start, end = self.span
        return type("V", (), {"name": self.name, "data_start": start, "data_end": end})


def test_a_challenger_registered_leaves_the_reference_alone(settings: Settings) -> None:
    """A stage change that keeps the champion (a challenger registered and kept) used to
    restart the reference whenever the champion's training rows fall in the warm-up: the
    demo's monitor went back to warming up after each retrain that was not promoted."""
    r = redis_client(redis_config(settings))
    m = Monitor(Context.from_settings(settings), r, "test")
    reg = m.registry = _Registry()  # type: ignore[assignment]
    m.core.begin(0.0)
    m.core.as_of = 40 * 86_400.0
    warm = "warming up (reference from 1970-02-07T00:00:00+00:00)"
    m._follow_reference()  # the champion at start: rows all in the warm-up, nothing moves
    assert m.core.status()["message"] == warm
    reg.token = "2"  # a challenger registered, the champion unchanged
    m._follow_reference()
    assert m.core.status()["message"] == warm
    reg.token, reg.name = "3", "batch-2"  # a new champion, too few rows: collect afresh
    m._follow_reference()
    assert m.core.status()["message"] == "warming up (reference from 1970-02-10T00:00:00+00:00)"
    r.close()


def test_a_new_champions_reference_takes_its_scores_from_the_champion_itself(
    settings: Settings,
) -> None:
    """The champion's training rows were scored by the models serving then: as the score
    reference they made a promotion alone read as prediction drift (the demo's calm raised a
    ``drift`` alert on ``score`` after a follow-up retrain). The features come from those rows;
    the scores are collected afresh from the monitor's time, as after an online reset."""
    frame = labeled_frame()
    store = OfflineStore(settings.data_dir, writer="seed")
    store.append(frame.to_dict("records"))
    store.close()
    r = redis_client(redis_config(settings))
    m = Monitor(Context.from_settings(settings), r, "test")
    reg = m.registry = _Registry()  # type: ignore[assignment]
    start, end = float(frame["epoch"].min()), float(frame["epoch"].max())
    reg.span = (start, end)
    m.core.as_of = end
    m._follow_reference()
    status = m.core.status()
    assert status["state"] == "ready" and status["source"] == "champion batch-1", status
    week = m.core.c.reference_s
    assert status["scores_reference_until"] == iso(end + week), status
    r.close()
