"""Model artifacts: round trip, and refusal of a wrong sha256 or other library versions."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import orjson
import pytest

from riverwatch.core import artifacts
from riverwatch.core.artifacts import (
    FORMAT,
    ModelVersion,
    dump_artifact,
    library_versions,
    load_artifact,
    read_header,
    sha256,
)
from riverwatch.core.errors import ModelError
from riverwatch.models.batch import predict_batch, train_batch

UNPICKLED: list[str] = []


class Tripwire:
    """Records being unpickled: a refused artifact must never reach this point."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        UNPICKLED.append("tripwire")


def forged(model: Any, versions: dict[str, str]) -> bytes:
    """An artifact whose header claims other library versions."""
    blob, _ = dump_artifact(model, {"name": "x"})
    body = pickle.loads(blob)
    header = orjson.loads(body["header"])
    header["versions"] = {**header["versions"], **versions}
    body["header"] = orjson.dumps(header)
    return pickle.dumps(body)


def test_a_trained_model_round_trips_with_its_metadata() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    y = (X[:, 0] > 1.5).astype(int)
    model = train_batch(X, y, ("a", "b", "c"), max_iter=10)
    blob, digest = dump_artifact(model, {"name": "batch-1", "features": ["a", "b", "c"]})
    assert digest == sha256(blob) and len(digest) == 64
    loaded, meta = load_artifact(blob, digest)
    assert np.array_equal(predict_batch(loaded, X), predict_batch(model, X))
    assert meta["name"] == "batch-1" and meta["features"] == ["a", "b", "c"]
    assert meta["versions"] == library_versions()
    assert meta["requires"] == ["python", "numpy", "scikit-learn"]
    assert set(library_versions()) == {"python", "numpy", "scikit-learn", "river"}


def test_a_wrong_sha256_is_refused_before_anything_is_unpickled() -> None:
    blob, digest = dump_artifact(Tripwire(), {})
    UNPICKLED.clear()
    with pytest.raises(ModelError, match="sha256 mismatch") as err:
        load_artifact(blob + b"x", digest)
    assert digest in str(err.value) and sha256(blob + b"x") in str(err.value)
    assert UNPICKLED == []


def test_other_library_versions_are_refused_with_both_versions_named() -> None:
    blob = forged(Tripwire(), {"scikit-learn": "0.24.2", "numpy": "1.0.0"})
    UNPICKLED.clear()
    with pytest.raises(ModelError) as err:
        load_artifact(blob, sha256(blob))
    msg = str(err.value)
    assert f"scikit-learn 0.24.2 (artifact) vs {library_versions()['scikit-learn']}" in msg
    assert "numpy 1.0.0 (artifact)" in msg and "riverwatch train" in msg
    assert UNPICKLED == []  # refused from the header alone


def test_river_is_checked_only_for_river_models(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = forged({"w": 1}, {"river": "0.0.1"})
    assert load_artifact(plain, sha256(plain))[0] == {"w": 1}  # river does not matter here
    from river import linear_model

    blob, digest = dump_artifact(linear_model.LogisticRegression(), {})
    assert read_header(blob)["requires"][-1] == "river"
    running = {**library_versions(), "river": "9.9.9"}
    monkeypatch.setattr(artifacts, "library_versions", lambda: running)
    with pytest.raises(ModelError, match=r"river .* vs 9\.9\.9"):
        load_artifact(blob, digest)


def test_garbage_is_refused_clearly() -> None:
    junk = pickle.dumps({"format": "something-else"})
    with pytest.raises(ModelError, match=f"not a {FORMAT} artifact"):
        load_artifact(junk, sha256(junk))
    with pytest.raises(ModelError, match="unreadable"):
        load_artifact(b"\x00\x01", sha256(b"\x00\x01"))


def test_model_version_round_trips_through_its_record() -> None:
    v = ModelVersion(
        "batch-3", "ab" * 32, "2026-01-01T00:00:00+00:00", 0.0, 1.0, 1.0, 2.0,
        {"auc": 0.9, "ap": None}, ("amount",), {"numpy": "2"}, info={"n_iter": 5},
    )  # fmt: skip
    rec = v.to_dict()
    assert rec["features"] == ["amount"] and orjson.loads(orjson.dumps(rec)) == rec
    again = ModelVersion.from_record(rec, {"champion": "batch-3"})
    assert again == ModelVersion(**{**rec, "features": ("amount",), "stage": "champion"})
    assert ModelVersion.from_record(rec, {"challenger": "batch-9"}).stage == "archived"
