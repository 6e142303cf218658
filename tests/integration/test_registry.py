"""The model registry on the real Valkey: round trip, refusals, stages, audit, concurrency."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import numpy as np
import orjson
import pytest
import redis

from riverwatch.context_parts import redis_config
from riverwatch.core import artifacts
from riverwatch.core.errors import ModelError
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.batch import BatchClassifier, predict_batch, train_batch
from riverwatch.stores.registry import Registry, StageConflict, UnknownModel

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings: Settings) -> Iterator[redis.Redis]:
    r = redis_client(redis_config(settings))
    yield r
    r.close()


@pytest.fixture
def registry(settings: Settings, client: redis.Redis) -> Registry:
    return Registry(client, Names(settings.topic_prefix), settings.data_dir)


def model(seed: int = 0) -> tuple[BatchClassifier, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 2))
    return train_batch(X, (X[:, 0] > 1.2).astype(int), ("a", "b"), max_iter=10), X


def register(reg: Registry, seed: int = 0, ap: float = 0.5) -> str:
    m, _ = model(seed)
    v = reg.register(
        m,
        data_window=(0.0, 100.0),
        holdout_window=(100.0, 150.0),
        metrics={"auc": 0.9, "ap": ap, "cp@100": float("nan")},
        features=("a", "b"),
        info={"train_rows": 400},
        reason="test",
    )
    return v.name


def test_register_then_load_round_trips_the_model(registry: Registry, settings: Settings) -> None:
    token0 = registry.stage_token()
    name = register(registry)
    assert name == "batch-1" and registry.stage_token() != token0
    v = registry.get(name)
    assert v.stage == "challenger" and registry.challenger() == v and registry.champion() is None
    assert (v.data_start, v.data_end, v.holdout_start, v.holdout_end) == (0, 100, 100, 150)
    assert v.metrics == {"auc": 0.9, "ap": 0.5, "cp@100": None}  # NaN is stored as null
    assert v.features == ("a", "b") and v.versions == artifacts.library_versions()
    assert v.info == {"train_rows": 400} and v.previous is None
    path = settings.data_dir / "models" / f"{name}.pkl"
    assert artifacts.sha256(path.read_bytes()) == v.sha256
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left

    loaded, again = registry.load(name)
    original, X = model()
    assert np.array_equal(predict_batch(loaded, X), predict_batch(original, X))
    assert again == v and orjson.loads(orjson.dumps(v.to_dict()))["name"] == name
    with pytest.raises(UnknownModel, match="no model version named 'batch-99'"):
        registry.load("batch-99")


def test_a_bagged_model_round_trips_and_scores_as_before(registry: Registry) -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(11_000, 2))  # early stopping on: members fitted apart (models.batch)
    bag = train_batch(X, (X[:, 0] > 1.2).astype(int), ("a", "b"), max_iter=10, members=2)
    v = registry.register(bag, data_window=(0.0, 100.0), holdout_window=(100.0, 150.0),
                          metrics={"auc": 0.9, "ap": 0.5, "cp@100": 0.1}, features=("a", "b"),
                          info={}, reason="test")  # fmt: skip
    loaded, _ = registry.load(v.name)
    assert type(loaded.estimator).__name__ == "Bagged" and len(loaded.estimator.members) == 2
    assert np.array_equal(predict_batch(loaded, X), predict_batch(bag, X))


def test_load_refuses_a_changed_file_and_other_library_versions(
    registry: Registry, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = register(registry)
    path = settings.data_dir / "models" / f"{name}.pkl"
    good = path.read_bytes()
    path.write_bytes(good[:-1] + b"\x00")
    with pytest.raises(ModelError, match="sha256 mismatch"):
        registry.load(name)
    path.unlink()
    with pytest.raises(ModelError, match="missing at"):
        registry.load(name)
    path.write_bytes(good)
    # the same artifact read by a process with another scikit-learn: refused, versions named
    running = {**artifacts.library_versions(), "scikit-learn": "1.0.2"}
    monkeypatch.setattr(artifacts, "library_versions", lambda: running)
    with pytest.raises(ModelError) as err:
        registry.load(name)
    recorded = registry.get(name).versions["scikit-learn"]
    assert f"scikit-learn {recorded} (artifact) vs 1.0.2 (this process)" in str(err.value)


def test_promote_archive_and_roll_back(registry: Registry) -> None:
    first, second, third = (register(registry, seed) for seed in range(3))
    assert registry.challenger().name == third  # type: ignore[union-attr]
    assert [v.stage for v in registry.list()] == ["challenger", "archived", "archived"]

    assert registry.promote(first, "first champion").stage == "champion"
    with pytest.raises(StageConflict, match="already the champion"):
        registry.promote(first)
    with pytest.raises(StageConflict, match="has no previous champion"):
        registry.rollback()
    token = registry.stage_token()
    v = registry.promote(third, "it won")
    assert v.previous == first and registry.stage_token() != token
    assert registry.challenger() is None  # the promoted challenger left that stage
    assert {v.name: v.stage for v in registry.list()} == {
        first: "archived",
        second: "archived",
        third: "champion",
    }
    back = registry.rollback("third misbehaves")
    assert back.name == first and back.stage == "champion"
    assert registry.get(third).stage == "archived"
    with pytest.raises(UnknownModel):
        registry.promote("batch-404")

    trail = registry.audit()
    assert [(e["action"], e["name"]) for e in trail] == [
        ("register", first),
        ("register", second),
        ("register", third),
        ("promote", first),
        ("promote", third),
        ("rollback", first),
    ]
    assert trail[1]["replaced"] == first and trail[4]["previous"] == first
    assert trail[5]["previous"] == third and trail[5]["reason"] == "third misbehaves"
    assert all(e["at"].endswith("+00:00") for e in trail)


def test_concurrent_promotions_leave_one_consistent_champion(
    registry: Registry, settings: Settings
) -> None:
    names = [register(registry, seed) for seed in range(4)]
    errors: list[BaseException] = []

    def promote_all(offset: int) -> None:
        r = redis_client(redis_config(settings))
        own = Registry(r, Names(settings.topic_prefix), settings.data_dir)
        for i in range(12):
            try:
                own.promote(names[(i + offset) % 4], "race")
            except StageConflict:
                pass  # another thread crowned it first
            except BaseException as exc:
                errors.append(exc)
        r.close()

    threads = [threading.Thread(target=promote_all, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    stages = [v.stage for v in registry.list()]
    assert stages.count("champion") == 1
    promotions = [e for e in registry.audit(1000) if e["action"] == "promote"]
    # every promotion saw the champion before it: the chain of "previous" has no gap
    for before, after in itertools.pairwise(promotions):
        assert after["previous"] == before["name"]
