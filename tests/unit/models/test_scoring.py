"""The shared scoring core: blending, shadow scoring, decisions, hot reload (pure, no I/O)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from riverwatch.core.errors import ModelError
from riverwatch.models import online
from riverwatch.models.features import FEATURE_INDEX, FEATURE_NAMES
from riverwatch.models.scoring import Thresholds, score_matrix
from riverwatch.models.serving import BatchModel, Models, ModelSet


class Const:
    """A stand-in batch estimator answering a fixed probability."""

    def __init__(self, p: float):
        self.p = p

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.tile([1 - self.p, self.p], (len(X), 1))


def rows(n: int = 3) -> np.ndarray:
    return np.ones((n, len(FEATURE_NAMES)))


def test_without_a_champion_the_score_is_the_online_score() -> None:
    out = score_matrix(Models(online.make_model()), rows(), Thresholds())
    assert all(o["score"] == o["online_score"] and o["batch_score"] is None for o in out)
    assert out[0]["model_versions"] == {"online": "0"}


def test_blend_shadow_and_decisions() -> None:
    m = Models(
        online.make_model(),
        "4",
        BatchModel("batch-1", Const(0.9), FEATURE_NAMES),
        BatchModel("batch-2", Const(0.1), FEATURE_NAMES),
    )
    out = score_matrix(m, rows(), Thresholds(review=0.3, decline=0.6, batch_weight=0.5))[0]
    assert out["batch_score"] == pytest.approx(0.9)
    assert out["score"] == pytest.approx(0.5 * 0.9 + 0.5 * out["online_score"])
    assert out["shadow_score"] == pytest.approx(0.1)  # recorded, never used to decide
    assert out["decision"] == "review"
    assert out["model_versions"] == {"online": "4", "batch": "batch-1", "challenger": "batch-2"}


def test_a_batch_model_gets_its_own_feature_columns() -> None:
    seen = {}

    class Spy(Const):
        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            seen["X"] = X
            return super().predict_proba(X)

    X = rows(2) * np.arange(len(FEATURE_NAMES))
    feats = ("card_n_7d", "amount")
    score_matrix(
        Models(online.make_model(), champion=BatchModel("b", Spy(0.5), feats)), X, Thresholds()
    )
    assert seen["X"].tolist() == [[FEATURE_INDEX["card_n_7d"], 0.0]] * 2


@dataclass
class FakeSnapshots:
    blob: bytes | None = None
    ver: str | None = None
    loads: int = 0

    def version(self, name: str) -> str | None:
        return self.ver

    def load(self, name: str) -> tuple[bytes, str] | None:
        self.loads += 1
        return None if self.blob is None else (self.blob, self.ver or "")


@dataclass
class Version:
    name: str
    features: tuple[str, ...] = FEATURE_NAMES


@dataclass
class FakeRegistry:
    token: str = "0"
    champ: Version | None = None
    broken: set[str] | None = None

    def stage_token(self) -> str:
        return self.token

    def champion(self) -> Any:
        return self.champ

    def challenger(self) -> Any:
        return None

    def load(self, name: str) -> tuple[Any, Any]:
        if self.broken and name in self.broken:
            raise ModelError(f"{name} is built with another scikit-learn")
        return Const(0.7), Version(name)


def test_model_set_reloads_when_versions_change_and_keeps_serving_on_bad_artifacts() -> None:
    snaps, reg = FakeSnapshots(), FakeRegistry()
    ms = ModelSet(snaps, reg, reload_s=0.0)
    assert ms.current().online_version == "0" and ms.current().champion is None
    learned = online.make_model()
    online.learn(learned, dict.fromkeys(FEATURE_NAMES, 1.0), 1)
    snaps.blob, snaps.ver = online.dump_snapshot(learned, {}), "7"
    reg.token, reg.champ = "1", Version("batch-3")
    m = ms.current()
    assert m.online_version == "7" and m.champion is not None and m.champion.name == "batch-3"
    loads = snaps.loads
    ms.current()
    assert snaps.loads == loads  # same version: no reload
    snaps.blob, snaps.ver = b"garbage", "8"
    reg.token, reg.champ, reg.broken = "2", Version("batch-4"), {"batch-4"}
    m = ms.current()
    assert m.online_version == "7"  # the unreadable snapshot is refused, the old model kept
    assert m.champion is None  # an artifact that cannot load is not served


def test_a_check_that_failed_is_not_a_check() -> None:
    """Redis down during a reload check: the next call checks again at once (a batch retried
    after Redis came back is scored with the model stored there), not reload_s later."""

    @dataclass
    class Down(FakeSnapshots):
        down: bool = False

        def version(self, name: str) -> str | None:
            if self.down:
                raise ConnectionError("Valkey is restarting")
            return self.ver

    learned = online.make_model()
    online.learn(learned, dict.fromkeys(FEATURE_NAMES, 1.0), 1)
    snaps = Down()
    ms = ModelSet(snaps, FakeRegistry(), reload_s=3600.0)
    snaps.blob, snaps.ver, snaps.down = online.dump_snapshot(learned, {}), "1", True
    with pytest.raises(ConnectionError):
        ms.current()
    snaps.down = False
    assert ms.current().online_version == "1"
    snaps.ver = "2"  # a check that went through holds the next off for reload_s
    assert ms.current().online_version == "1"


def test_model_set_refuses_a_batch_model_needing_a_feature_the_scorer_lacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with_attr = (*FEATURE_NAMES, "attr_risk")

    @dataclass
    class AttrRegistry(FakeRegistry):
        def load(self, name: str) -> tuple[Any, Any]:
            return Const(0.7), Version(name, with_attr)

    reg = AttrRegistry(token="1", champ=Version("batch-9"))
    with caplog.at_level(logging.ERROR, logger="riverwatch.models.serving"):
        assert ModelSet(FakeSnapshots(), reg, reload_s=0.0).current().champion is None
    assert "batch-9" in caplog.text and "attr_risk" in caplog.text
    assert "RIVERWATCH_FEATURE_ATTRIBUTES" in caplog.text
    served = ModelSet(FakeSnapshots(), reg, 0.0, with_attr).current().champion
    assert served is not None and served.features == with_attr
    # The other way round (a champion from before the attribute) is served on its columns.
    old = ModelSet(FakeSnapshots(), FakeRegistry("1", Version("batch-8")), 0.0, with_attr)
    champion = old.current().champion
    assert champion is not None and champion.features == FEATURE_NAMES


def test_numpy_scoring_reproduces_river_exactly() -> None:
    import pandas as pd

    rng = np.random.default_rng(3)
    m = online.make_model()
    for _ in range(300):
        x = rng.lognormal(size=len(FEATURE_NAMES))
        online.learn(m, dict(zip(FEATURE_NAMES, x, strict=True)), int(x[0] > 1.5))
    X = rng.lognormal(size=(50, len(FEATURE_NAMES)))
    X[:, FEATURE_INDEX["is_weekend"]] = 0.0  # a zero-variance column, as River sees it
    river = m.predict_proba_many(pd.DataFrame(X, columns=list(FEATURE_NAMES)))[True].to_numpy()
    assert np.abs(online.score_batch(m, X) - river).max() <= 1e-12
    z = m.steps["StandardScaler"].transform_many(pd.DataFrame(X, columns=list(FEATURE_NAMES)))
    w = m.steps["LogisticRegression"].weights
    first = max(FEATURE_NAMES, key=lambda f: z[f].iloc[0] * w.get(f, 0.0))
    assert online.reasons(m, X[:1])[0][0][0] == first


def test_the_champions_learned_blend_weight_is_served_unless_fixed() -> None:
    learned = BatchModel("batch-3", Const(0.9), FEATURE_NAMES, blend_weight=0.8)
    plain = BatchModel("batch-1", Const(0.9), FEATURE_NAMES)
    for champion, th, w in (
        (learned, Thresholds(batch_weight=0.5), 0.8),
        (learned, Thresholds(batch_weight=0.5, learned_blend=False), 0.5),
        (plain, Thresholds(batch_weight=0.3), 0.3),
    ):
        out = score_matrix(Models(online.make_model(), "1", champion), rows(1), th)[0]
        assert out["score"] == pytest.approx(w * 0.9 + (1 - w) * out["online_score"])
