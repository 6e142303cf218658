"""The reset of the online model: which stored rows it re-learns, and how it learns them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from riverwatch.models import online
from riverwatch.models.features import FEATURE_NAMES
from riverwatch.stores.offline import OfflineStore
from riverwatch.stores.offline_rows import warm_rows

DAY = 86_400.0
NEWEST = 20 * DAY + 3600.0


def _row(i: int, epoch: float, label: int) -> dict[str, object]:
    features = {name: float(i + j) for j, name in enumerate(FEATURE_NAMES)}
    base = {"event_id": f"e{i}", "card_id": "c", "terminal_id": "t", "decision": "approve"}
    return {**base, "epoch": epoch, "label": label, "score": 0.1, "groups": {}, **features}


def test_warm_window_ends_at_the_newest_label() -> None:
    assert online.warm_window(NEWEST, 3) == (NEWEST - 3 * DAY, NEWEST)
    assert online.warm_window(NEWEST, 0.5) == (NEWEST - DAY / 2, NEWEST)
    assert online.warm_window(NEWEST, 0) is None
    assert online.warm_window(None, 3) is None


def test_warm_rows_take_the_window_with_both_ends_oldest_first(tmp_path: Path) -> None:
    store = OfflineStore(tmp_path, writer="t")
    start, end = NEWEST - 3 * DAY, NEWEST
    epochs = {0: start - 1, 1: end, 2: start, 3: start + DAY, 4: end + 1, 5: start + 2 * DAY}
    store.append([_row(i, e, i % 2) for i, e in epochs.items()])  # not in event order
    store.close()
    X, y = warm_rows(store, (start, end))
    # rows 2, 3, 5, 1 by event time; the first feature of row i is i
    assert X[:, 0].tolist() == [2.0, 3.0, 5.0, 1.0]
    assert y.tolist() == [0, 1, 1, 1]
    assert X.shape == (4, len(FEATURE_NAMES))
    empty_X, empty_y = warm_rows(store, None)
    assert empty_X.shape == (0, len(FEATURE_NAMES)) and len(empty_y) == 0
    assert len(warm_rows(None, (start, end))[1]) == 0


def _weights(model: object) -> dict[str, float]:
    return dict(model["LogisticRegression"].weights)  # type: ignore[index]


def test_warmed_learns_the_rows_in_order_like_the_live_learner() -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, len(FEATURE_NAMES)))
    y = (X[:, 0] + rng.normal(scale=0.3, size=300) > 1).astype(int)
    live = online.make_model()
    for row, label in zip(X, y, strict=True):
        online.learn(live, dict(zip(FEATURE_NAMES, row, strict=True)), int(label))
    warm = online.warmed(X, y)
    assert _weights(warm) == pytest.approx(_weights(live), abs=1e-12)
    assert _weights(online.warmed(X[::-1], y[::-1])) != pytest.approx(_weights(live), abs=1e-6)
    prior = online.warmed(X[:0], y[:0])
    assert _weights(prior) == _weights(online.make_model())
    assert online.score_batch(prior, X[:1])[0] == pytest.approx(1 / (1 + np.exp(4.6)))
