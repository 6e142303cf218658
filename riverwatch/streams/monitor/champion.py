"""A promoted champion as the monitor's reference: its training window's rows and its feature
importance (split from streams.monitor.runner, which follows the registry)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from riverwatch.core.artifacts import ModelVersion
from riverwatch.monitors.importance import permutation_importance
from riverwatch.stores.offline import OfflineStore
from riverwatch.stores.registry import Registry
from riverwatch.streams.monitor.data import REFERENCE_COLUMNS, FrameRows, reference_rows

log = logging.getLogger(__name__)


def champion_reference(
    registry: Registry, offline: OfflineStore, champ: ModelVersion, names: Sequence[str]
) -> tuple[FrameRows, dict[str, float] | None]:
    """The rows of ``champ``'s training window as the reference takes them (read with those
    columns only, each row made as it is read) and its feature importance."""
    df = offline.read(champ.data_start, champ.data_end, columns=[*names, *REFERENCE_COLUMNS])
    return reference_rows(df, names), importance(registry, champ, df, names)


def importance(
    registry: Registry, champ: ModelVersion, df: Any, names: Sequence[str]
) -> dict[str, float] | None:
    """The champion's permutation importance on its training rows (None without both
    classes or a loadable model: the features then weigh alike)."""
    labels = df["label"].to_numpy() if len(df) else None
    if labels is None or len(set(labels.tolist())) < 2:
        return None
    try:
        model, _ = registry.load(champ.name)
        cols = list(getattr(model, "features", names))
        X = df[cols].to_numpy(dtype=float)
        return permutation_importance(lambda m: model.predict_proba(m)[:, 1], X, labels, cols)
    except Exception:  # the weights are a refinement: never lose the reference over them
        log.exception("champion %s: no feature importance", champ.name)
        return None
