"""Rows in and out of the offline store: the row a labeled event is stored as, and the rows a
reset of the online model re-learns (split from stores.offline)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from riverwatch.models.features import FEATURE_NAMES
from riverwatch.stores.offline import OfflineStore


def warm_rows(
    store: OfflineStore | None, window: tuple[float, float] | None, max_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Features (FEATURE_NAMES columns) and labels of the stored rows a reset re-learns.

    Every row with ``start <= epoch <= end`` (both ends: the newest label is learned too), at
    most the newest ``max_rows`` (:meth:`OfflineStore.read`'s ``newest``), oldest first;
    empty without a store or a window.
    """
    names = list(store.feature_set.names if store is not None else FEATURE_NAMES)
    if store is None or window is None or max_rows == 0:
        return np.empty((0, len(names))), np.empty(0, dtype=int)
    # read() excludes its end: step just past it
    rows = store.read(
        window[0], math.nextafter(window[1], math.inf), [*names, "label"], newest=max_rows
    )
    return rows[names].to_numpy(dtype=float), rows["label"].to_numpy(dtype=int)


def labeled_row(row: dict[str, Any], x: dict[str, float], label: int) -> dict[str, Any]:
    """The offline-store row of a labeled event: its scores, groups, features and label."""
    keep = (
        "event_id",
        "card_id",
        "terminal_id",
        "epoch",
        "score",
        "online_score",
        "batch_score",
        "decision",
        "groups",
    )
    return {**{k: row.get(k) for k in keep}, **x, "label": label}
