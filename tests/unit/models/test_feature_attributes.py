"""The producer's attributes as extra features: extraction, columns, scoring (pure, no I/O)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from riverwatch.core.errors import ConfigError
from riverwatch.models import online
from riverwatch.models.feature_set import ATTR_FILL, FeatureSet, attribute_value, row_features
from riverwatch.models.features import FEATURE_NAMES, FeatureSpec, step
from riverwatch.models.scoring import Thresholds, score_matrix
from riverwatch.models.serving import BatchModel, Models
from riverwatch.stores.offline import OfflineStore

names = st.text(st.sampled_from("abcxyz_.-019"), min_size=1, max_size=8)
# What a producer may send (core.events.AttributeValue) and what a raw mapping may hold.
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)


@given(values)
def test_attribute_value_is_a_finite_float_or_none(v: Any) -> None:
    got = attribute_value(v)
    if isinstance(v, bool):
        assert got == float(v)
    elif isinstance(v, float):
        assert got == (v if math.isfinite(v) else None)
    elif isinstance(v, int):
        if abs(v) < 2**1023:
            assert got == float(v)
        elif abs(v) >= 2**1024:  # beyond float range: not a usable number
            assert got is None
    else:
        assert got is None
    assert got is None or (isinstance(got, float) and math.isfinite(got))


@given(st.lists(names, unique=True, max_size=6), st.dictionaries(names, values, max_size=8))
def test_extract_gives_one_finite_value_per_attribute_and_counts_every_fill(
    chosen: list[str], attrs: dict[str, Any]
) -> None:
    fs = FeatureSet(tuple(chosen))
    got, fills = fs.extract(attrs)
    assert len(got) == len(chosen) and all(math.isfinite(v) for v in got)
    assert [a for a, _ in fills] == [a for a in chosen if attribute_value(attrs.get(a)) is None]
    for (name, reason), value in zip(fills, [got[chosen.index(a)] for a, _ in fills], strict=True):
        assert value == ATTR_FILL
        assert reason == ("missing" if attrs.get(name) is None else "invalid")
    for name, value in zip(chosen, got, strict=True):
        if (v := attribute_value(attrs.get(name))) is not None:
            assert value == v
    assert fs.names == (*FEATURE_NAMES, *(f"attr_{a}" for a in chosen))


@given(st.lists(names, unique=True, max_size=4), st.dictionaries(names, values, max_size=6))
def test_step_appends_the_attributes_to_the_built_in_row(
    chosen: list[str], attrs: dict[str, Any]
) -> None:
    spec = FeatureSpec()
    fs = FeatureSet(tuple(chosen))
    card: dict[int, list[float]] = {}
    x, fills = fs.step(spec, 86_400.0, 12.5, attrs, card, {})
    assert x[: len(FEATURE_NAMES)] == step(spec, 86_400.0, 12.5, {}, {})
    assert x[len(FEATURE_NAMES) :] == fs.extract(attrs)[0] and fills == fs.extract(attrs)[1]
    assert card  # the card was counted, as by step()
    assert row_features({"x": x, **fs.row_meta()}) == dict(zip(fs.names, x, strict=True))


def test_the_default_set_is_exactly_the_built_in_features() -> None:
    fs = FeatureSet.parse("")
    assert fs.names is FEATURE_NAMES and fs.row_meta() == {}
    x, fills = fs.step(FeatureSpec(), 0.0, 5.0, {"ignored": 1}, {}, {})
    assert x == step(FeatureSpec(), 0.0, 5.0, {}, {}) and fills == []
    assert FeatureSet.parse(" a ,b,, ").attributes == ("a", "b")


@pytest.mark.parametrize("text", ["a,a", "bad name", "x" * 65, "é"])
def test_bad_attribute_names_are_refused_with_the_variable_named(text: str) -> None:
    with pytest.raises(ConfigError, match="RIVERWATCH_FEATURE_ATTRIBUTES"):
        FeatureSet.parse(text)


def test_scoring_uses_the_attribute_columns_by_name() -> None:
    fs = FeatureSet(("risk",))
    model = online.make_model()
    for i in range(200):
        x = dict.fromkeys(FEATURE_NAMES, 1.0) | {"attr_risk": float(i % 2)}
        online.learn(model, x, i % 2)  # fraud exactly when risk is 1
    X = np.array([[1.0] * len(FEATURE_NAMES) + [r] for r in (0.0, 1.0)])
    low, high = score_matrix(Models(model), X, Thresholds(), fs.names)
    assert high["online_score"] > low["online_score"]
    top = high["reasons"][0]
    assert top["feature"] == "attr_risk" and top["value"] == 1.0 and top["contribution"] > 0

    class Mean:  # a champion trained before the attribute existed: its own columns only
        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            assert X.shape[1] == len(FEATURE_NAMES)
            return np.column_stack([1 - X.mean(axis=1) / 10, X.mean(axis=1) / 10])

    old = Models(model, champion=BatchModel("batch-1", Mean(), FEATURE_NAMES))
    assert score_matrix(old, X, Thresholds(), fs.names)[1]["batch_score"] == pytest.approx(0.1)


def test_the_offline_store_keeps_the_attribute_columns_and_reads_old_rows_as_nan(
    tmp_path: Path,
) -> None:
    base = {"card_id": "c", "terminal_id": "t", "label": 0, "score": 0.1, "decision": "approve"}
    plain = OfflineStore(tmp_path, writer="old")
    plain.append([{**base, "event_id": "old", "epoch": 10.0, "amount": 1.0}])
    plain.flush()
    fs = FeatureSet(("risk",))
    store = OfflineStore(tmp_path, writer="new", feature_set=fs)
    row = {"x": [2.0] * len(FEATURE_NAMES) + [0.7], **fs.row_meta()}
    store.append([{**base, "event_id": "new", "epoch": 20.0, **row_features(row)}])
    store.flush()
    df = store.read(0, 100)
    assert list(df.columns[-2:]) == [FEATURE_NAMES[-1], "attr_risk"]
    assert df["amount"].tolist() == [1.0, 2.0]
    assert math.isnan(df["attr_risk"].iloc[0]) and df["attr_risk"].iloc[1] == 0.7
    assert "attr_risk" not in plain.read(0, 100).columns  # a reader must pass the same set
