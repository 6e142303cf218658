"""The training protocol: windows with the label delay, the promotion rule, data guards."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from riverwatch.models.features import FEATURE_NAMES
from riverwatch.models.promotion import DAY_S, TrainConfig, decide, windows
from riverwatch.models.training import train_and_evaluate
from riverwatch.shell.train import metrics_table, parse_now
from tests.support.builders import START, labeled_frame

T0 = START.timestamp()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return labeled_frame()


def test_windows_sit_before_the_label_delay() -> None:
    w = windows(100 * DAY_S, TrainConfig())  # 21 train, 7 hold-out, 7 delay
    assert (w.train_start, w.train_end) == (65 * DAY_S, 86 * DAY_S)
    assert (w.holdout_start, w.holdout_end) == (86 * DAY_S, 93 * DAY_S)
    w = windows(10.5 * DAY_S, TrainConfig(train_days=2, holdout_days=1, delay_days=0))
    assert (w.train_start, w.holdout_start, w.holdout_end) == (
        7.5 * DAY_S,
        9.5 * DAY_S,
        10.5 * DAY_S,
    )
    assert "hold-out 1970-01-10 12:00..1970-01-11 12:00 UTC" in w.describe()
    with pytest.raises(ValueError, match="'ap' or 'cp@100'"):
        TrainConfig(metric="auc")
    with pytest.raises(ValueError, match="must be > 0"):
        TrainConfig(train_days=0)


def test_the_promotion_rule() -> None:
    cfg = TrainConfig(margin=0.01)
    assert decide({"auc": 0.8, "ap": 0.3}, None, cfg)[0] is True
    ok, why = decide({"auc": 0.5, "ap": 0.3}, None, cfg)
    assert not ok and "not above 0.5" in why
    assert decide({"auc": math.nan, "ap": math.nan}, None, cfg)[0] is False
    assert decide({"ap": 0.72}, {"ap": 0.70}, cfg) == (
        True,
        "challenger AP 0.7200 beats champion AP 0.7000 by more than the margin 0.0100",
    )
    assert decide({"ap": 0.71}, {"ap": 0.70}, cfg)[0] is False  # exactly the margin: no
    assert decide({"ap": 0.70}, {"ap": 0.70}, TrainConfig())[0] is False  # a tie never wins
    cp = TrainConfig(metric="cp@100")
    assert decide({"ap": 0.1, "cp@100": 0.3}, {"ap": 0.9, "cp@100": 0.2}, cp)[0] is True
    assert decide({"ap": math.nan}, {"ap": 0.2}, TrainConfig())[0] is False
    assert decide({"ap": 0.2}, {"ap": math.nan}, TrainConfig())[0] is True


def test_a_challenger_is_trained_promoted_then_not_beaten_by_its_twin(
    frame: pd.DataFrame,
) -> None:
    now = T0 + 45 * DAY_S
    cfg = TrainConfig(train_days=14, holdout_days=7, delay_days=7)
    first = train_and_evaluate(frame, now, cfg)
    assert first.promote and first.evaluated, first.reason
    assert first.reason.startswith("no champion yet; challenger AUC")
    assert first.challenger_metrics and first.challenger_metrics["auc"] > 0.7
    assert set(first.challenger_metrics) == {"auc", "ap", "cp@100"}
    w = first.windows
    in_train = frame[(frame["epoch"] >= w.train_start) & (frame["epoch"] < w.train_end)]
    assert first.counts["train_rows"] == len(in_train) < len(frame)
    assert first.counts["holdout_frauds"] > 0 and first.features == FEATURE_NAMES

    second = train_and_evaluate(frame, now, cfg, champion=first.challenger)
    assert second.challenger_metrics == second.champion_metrics == first.challenger_metrics
    assert not second.promote and "does not beat champion" in second.reason
    summary = second.summary()
    assert summary["promote"] is False and summary["windows"]["holdout_end"] == now - 7 * DAY_S


def test_a_champion_trained_on_fewer_features_is_still_judged(frame: pd.DataFrame) -> None:
    now = T0 + 45 * DAY_S
    cfg = TrainConfig(train_days=14)
    old = train_and_evaluate(frame, now, cfg, feature_names=FEATURE_NAMES[:6]).challenger
    assert old is not None and len(old.features) == 6
    result = train_and_evaluate(frame, now, cfg, champion=old)
    assert result.champion_metrics is not None and result.challenger_metrics is not None
    assert result.champion_metrics["ap"] != result.challenger_metrics["ap"]


def test_too_little_data_is_explained(frame: pd.DataFrame) -> None:
    empty = train_and_evaluate(frame.iloc[:0], T0 + 45 * DAY_S, TrainConfig())
    assert empty.challenger is None and not empty.promote
    assert empty.reason.startswith("too little data: no labeled rows in the training window")
    legit = frame[frame["label"] == 0]
    no_fraud = train_and_evaluate(legit, T0 + 45 * DAY_S, TrainConfig(train_days=14))
    assert no_fraud.reason.startswith("too little data: no fraud among")
    # frauds in training but none in the hold-out: trained, not evaluated, not registered
    cfg = TrainConfig(train_days=14)
    w = windows(T0 + 45 * DAY_S, cfg)
    hold = (frame["epoch"] >= w.holdout_start) & (frame["epoch"] < w.holdout_end)
    blind = train_and_evaluate(frame[~hold | (frame["label"] == 0)], T0 + 45 * DAY_S, cfg)
    assert blind.challenger is not None and not blind.evaluated and not blind.promote
    assert blind.reason.startswith("cannot evaluate: no fraud among")


def test_the_cli_table_and_time_parsing() -> None:
    lines = metrics_table(
        {
            "challenger": {"auc": 0.91, "ap": 0.7, "cp@100": None},
            "challenger_name": "batch-4",
            "champion": {"auc": 0.9, "ap": 0.69, "cp@100": 0.3},
            "champion_name": "batch-2",
        }
    )
    assert lines[1].split() == ["challenger", "batch-4", "0.9100", "0.7000", "-"]
    assert lines[2].split() == ["champion", "batch-2", "0.9000", "0.6900", "0.3000"]
    assert parse_now("2026-01-01T00:00:00") == T0 == parse_now("2026-01-01T01:00:00+01:00")


def test_the_blend_weight_follows_the_better_model_on_the_hold_out(frame: pd.DataFrame) -> None:
    """Against online scores recorded as noise the batch model takes (nearly) all the weight;
    against recorded scores that are the truth itself, the online model leads; without
    recorded online scores there is no learned weight (scorers then use the setting)."""
    import numpy as np

    now = T0 + 45 * DAY_S
    cfg = TrainConfig(train_days=14, holdout_days=7, delay_days=7)
    rng = np.random.default_rng(0)
    noise = frame.assign(online_score=rng.random(len(frame)))
    oracle = frame.assign(online_score=frame["label"] * 0.5 + 0.25)
    unscored = frame.assign(online_score=None)
    got = {
        name: train_and_evaluate(f, now, cfg).blend_weight
        for name, f in (("noise", noise), ("oracle", oracle), ("none", unscored))
    }
    assert got["noise"] is not None and got["noise"] >= 0.9, got
    assert got["oracle"] is not None and got["oracle"] < 0.5, got  # ties: nearest an even blend
    assert got["none"] is None
    assert train_and_evaluate(noise, now, cfg).summary()["blend_weight"] == got["noise"]


def test_a_refit_champion_is_served_on_every_label_and_judged_on_what_it_has_not_seen(
    frame: pd.DataFrame,
) -> None:
    now = T0 + 38 * DAY_S
    cfg = TrainConfig(train_days=14, holdout_days=7, delay_days=7, refit=True, half_life_days=7)
    first = train_and_evaluate(frame, now, cfg)
    assert first.promote and first.challenger is not None, first.reason
    w = first.windows
    assert first.challenger.trained_until == w.holdout_end  # fitted on the hold-out too
    assert first.counts["refit_rows"] == first.counts["train_rows"] + first.counts["holdout_rows"]
    # no label newer than the champion's: kept, whatever its in-sample metrics say
    twin = train_and_evaluate(frame, now, cfg, champion=first.challenger)
    assert not twin.promote and "no newer label" in twin.reason
    # three days later, a champion pickled without its judged self (before it was kept):
    # both are judged on the three days it has not seen (tests/unit/models/
    # test_training_fairness.py: one that has it is judged as it was before its refit)
    legacy = dataclasses.replace(first.challenger, judged=None)
    later = train_and_evaluate(frame, now + 3 * DAY_S, cfg, champion=legacy)
    assert "rows the champion has not seen" in later.reason or "fresher" in later.reason
    unseen = frame[(frame["epoch"] >= w.holdout_end) & (frame["epoch"] < later.windows.holdout_end)]
    if "rows the champion has not seen" in later.reason:
        assert f"on the {len(unseen)} hold-out rows" in later.reason
    # without refit the served model is the one judged, fitted on the training window only
    plain = train_and_evaluate(frame, now, TrainConfig(train_days=14, holdout_days=7))
    assert plain.challenger is not None and plain.challenger.trained_until == w.train_end
    with pytest.raises(ValueError, match="half_life_days"):
        TrainConfig(half_life_days=0)
    with pytest.raises(ValueError, match="members"):
        TrainConfig(members=0)
