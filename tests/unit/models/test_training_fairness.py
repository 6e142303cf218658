"""A scheduled challenger and a refit champion are judged alike (issue 17).

With ``refit`` the champion is served fitted on its hold-out too, through ``now - delay``;
the next day's challenger is judged as fitted on its training window, which ends a week
earlier, and the new hold-out overlaps the days the served champion was fitted on. Judged
as served, the champion meets the challenger on different terms (a week fresher, on the one
day of the hold-out it has not seen). The fair contest: the champion as it was judged, before
its refit (fitted on its training window, which ends before this hold-out), on the same whole
hold-out as the challenger.
"""

from __future__ import annotations

import pandas as pd
import pytest

from riverwatch.core.artifacts import dump_artifact, load_artifact
from riverwatch.models.batch import predict_batch, train_batch
from riverwatch.models.evaluation import fraud_metrics
from riverwatch.models.features import FEATURE_NAMES
from riverwatch.models.promotion import DAY_S, TrainConfig
from riverwatch.models.training import METRICS, recency_weights, train_and_evaluate
from tests.support.builders import START, labeled_frame

T0 = START.timestamp()
CFG = TrainConfig(train_days=14, holdout_days=7, delay_days=7, refit=True, half_life_days=7)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return labeled_frame()


def _between(df: pd.DataFrame, start: float, end: float) -> pd.DataFrame:
    return df[(df["epoch"] >= start) & (df["epoch"] < end)]


def _x(df: pd.DataFrame):  # type: ignore[no-untyped-def]
    return df.reindex(columns=list(FEATURE_NAMES)).to_numpy(dtype=float)


def test_the_next_days_challenger_meets_the_champion_as_judged_on_the_same_hold_out(
    frame: pd.DataFrame,
) -> None:
    now = T0 + 38 * DAY_S
    first = train_and_evaluate(frame, now, CFG)
    assert first.promote and first.challenger is not None, first.reason
    champion, w1 = first.challenger, first.windows
    nxt = train_and_evaluate(frame, now + DAY_S, CFG, champion=champion)
    w = nxt.windows
    hold = _between(frame, w.holdout_start, w.holdout_end)
    # the served champion was fitted on six of the seven days of this hold-out
    assert w.holdout_start < champion.trained_until < w.holdout_end
    # an independent fit of the champion as judged: its training window, which ends before
    # this hold-out, with the same recency weights
    train = _between(frame, w1.train_start, w1.train_end)
    assert train["epoch"].max() < w.holdout_start
    weights = recency_weights(train["epoch"], w1.train_end, CFG.half_life_days)
    ref = train_batch(_x(train), train["label"].to_numpy(), FEATURE_NAMES, sample_weight=weights)
    want = fraud_metrics(hold["epoch"], hold["card_id"], hold["label"],
                         predict_batch(ref, _x(hold)), k=100)  # fmt: skip
    # the champion is judged as it was before its refit, on every row of the hold-out
    assert nxt.champion_metrics == pytest.approx({k: want[k] for k in METRICS}, nan_ok=True)
    assert "as judged before its refit, on the whole hold-out" in nxt.reason, nxt.reason
    # ... and the challenger on the same rows, as fitted on its own training window
    assert nxt.challenger is not None and nxt.challenger.judged is not None
    assert nxt.challenger.judged.trained_until == w.train_end == w.holdout_start
    mine = fraud_metrics(hold["epoch"], hold["card_id"], hold["label"],
                         predict_batch(nxt.challenger.judged, _x(hold)), k=100)  # fmt: skip
    assert nxt.challenger_metrics == pytest.approx({k: mine[k] for k in METRICS}, nan_ok=True)
    # the promotion rule itself is unchanged: promoted iff it beats the champion's AP
    assert nxt.promote == (nxt.challenger_metrics["ap"] > nxt.champion_metrics["ap"])


def test_the_judged_model_is_kept_with_the_served_one(frame: pd.DataFrame) -> None:
    """Served refit, judged on the training window only; the artifact keeps both, and a
    retrain on the same labels is kept without a contest."""
    now = T0 + 38 * DAY_S
    first = train_and_evaluate(frame, now, CFG)
    model = first.challenger
    assert model is not None and model.judged is not None
    assert model.trained_until == first.windows.holdout_end
    assert model.judged.trained_until == first.windows.train_end and model.judged.judged is None
    blob, sha = dump_artifact(model, {"name": "batch-1", "features": list(FEATURE_NAMES)})
    loaded, _ = load_artifact(blob, sha)
    assert loaded.judged is not None and loaded.judged.trained_until == first.windows.train_end
    twin = train_and_evaluate(frame, now, CFG, champion=loaded)
    assert not twin.promote and "no newer label to retrain on, kept" in twin.reason
    # without refit the served model is the judged one: nothing rides along
    plain = train_and_evaluate(frame, now, TrainConfig(train_days=14, holdout_days=7))
    assert plain.challenger is not None and plain.challenger.judged is None
