"""The windows a challenger is trained and judged on, and the rule that promotes it, on the
Fraud Detection Handbook's protocol (the training itself: :mod:`riverwatch.models.training`).

Labels arrive ``delay_days`` after their transaction, so at event time ``now`` the newest
complete labels are those of ``now - delay``. The hold-out is the ``holdout_days`` before that,
and the training window the ``train_days`` before the hold-out::

    |------ train_days ------|--- holdout_days ---|--- delay_days ---|
    train_start      holdout_start          holdout_end            now

The challenger is fitted on the training window and scored on the hold-out, as is the
champion (when there is one); promotion needs the challenger to beat the champion's
``metric`` by more than ``margin`` (absolute). Without a champion, a challenger is promoted
when the hold-out has a fraud to find and its AUC beats chance.

>>> w = windows(now=30 * DAY_S, cfg=TrainConfig(train_days=14, holdout_days=7, delay_days=7))
>>> [t / DAY_S for t in (w.train_start, w.train_end, w.holdout_start, w.holdout_end)]
[2.0, 16.0, 16.0, 23.0]
>>> decide({"ap": 0.70}, {"ap": 0.69}, TrainConfig(margin=0.02))
(False, 'challenger AP 0.7000 does not beat champion AP 0.6900 by more than the margin 0.0200')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

DAY_S = 86_400
_LABELS = {"auc": "AUC", "ap": "AP", "cp@100": "CP@100"}


@dataclass(frozen=True)
class TrainConfig:
    """Window lengths in days, and the promotion rule (metric ``ap`` or ``cp@100``, margin)."""

    train_days: float = 21
    holdout_days: float = 7
    delay_days: float = 7
    metric: str = "ap"
    margin: float = 0.0
    refit: bool = False
    half_life_days: float | None = None
    max_rows: int = 250_000  # labeled rows a retrain reads at most (stores.offline.bounded)
    members: int = 1  # batch models fitted and averaged (models.batch.Bagged)

    def __post_init__(self) -> None:
        if self.metric not in ("ap", "cp@100"):
            raise ValueError(f"promotion metric must be 'ap' or 'cp@100', got {self.metric!r}")
        if self.train_days <= 0 or self.holdout_days <= 0 or self.delay_days < 0:
            raise ValueError("train_days and holdout_days must be > 0, delay_days >= 0")
        if self.members < 1:
            raise ValueError("members must be >= 1")
        if self.half_life_days is not None and self.half_life_days <= 0:
            raise ValueError("half_life_days must be > 0 (or None: every row weighs the same)")


@dataclass(frozen=True)
class Windows:
    """The training and hold-out windows, epoch seconds, each ``[start, end)``."""

    train_start: float
    train_end: float
    holdout_start: float
    holdout_end: float

    def describe(self) -> str:
        """``train 2026-01-01..2026-01-22, hold-out 2026-01-22..2026-01-29`` (UTC)."""

        return (
            f"train {_day(self.train_start)}..{_day(self.train_end)}, "
            f"hold-out {_day(self.holdout_start)}..{_day(self.holdout_end)} UTC"
        )


def windows(now: float, cfg: TrainConfig) -> Windows:
    """The windows for event time ``now``."""
    holdout_end = now - cfg.delay_days * DAY_S
    holdout_start = holdout_end - cfg.holdout_days * DAY_S
    return Windows(
        holdout_start - cfg.train_days * DAY_S, holdout_start, holdout_start, holdout_end
    )


def bounded(
    w: Windows, days: Sequence[tuple[float, int]], max_rows: int
) -> tuple[Windows | None, str]:
    """``w`` with its training window starting late enough that the rows of ``days`` (each
    day's start and its row count, oldest first) from there to the hold-out's end are at most
    ``max_rows``, and what was cut ("" when nothing); ``None`` and why when the hold-out's
    days alone hold more. A day counts whole where a window cuts it (an upper bound). The
    newest days are kept: they weigh most (``half_life_days``) and judge nothing stale.

    >>> w = Windows(0.0, 3 * DAY_S, 3 * DAY_S, 4 * DAY_S)
    >>> days = [(0.0, 50), (DAY_S, 50), (2 * DAY_S, 50), (3 * DAY_S, 60)]
    >>> bounded(w, days, 210) == (w, "")
    True
    >>> b, why = bounded(w, days, 209)
    >>> b.train_start / DAY_S, b.train_end == w.train_end
    (1.0, True)
    >>> print(why.replace(": ", ":\\n"))
    the training window starts at 1970-01-02 00:00 instead of 1970-01-01 00:00:
    160 rows from there, RIVERWATCH_TRAIN_MAX_ROWS is 209
    >>> bounded(w, days, 59)
    (None, "the hold-out's days hold 60 labeled rows, more than RIVERWATCH_TRAIN_MAX_ROWS (59)")
    """
    hold = sum(n for d, n in days if d + DAY_S > w.holdout_start)
    if hold > max_rows:
        return None, (
            f"the hold-out's days hold {hold:,} labeled rows, more than "
            f"RIVERWATCH_TRAIN_MAX_ROWS ({max_rows:,})"
        )
    total, start = hold, w.train_start
    for d, n in reversed([x for x in days if x[0] + DAY_S <= w.holdout_start]):
        if total + n > max_rows:
            start = max(start, d + DAY_S)
            break
        total += n
    if start <= w.train_start:
        return w, ""
    cut = replace(w, train_start=start)
    return cut, (
        f"the training window starts at {_day(start)} instead of {_day(w.train_start)}: "
        f"{total:,} rows from there, RIVERWATCH_TRAIN_MAX_ROWS is {max_rows:,}"
    )


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def _fmt(metric: str, value: float) -> str:
    return f"{_LABELS.get(metric, metric)} {value:.4f}"


def decide(
    challenger: Mapping[str, float], champion: Mapping[str, float] | None, cfg: TrainConfig
) -> tuple[bool, str]:
    """Whether to promote, and why. A challenger must rank better than chance (AUC > 0.5);
    then, without a champion it is promoted, else it must beat the champion by the margin.

    The chance check also holds against a champion: right after a drift both can score badly
    on the hold-out, and one that ranks no better than chance must not win on noise.

    >>> decide({"auc": 0.47, "ap": 0.23}, {"auc": 0.6, "ap": 0.22}, TrainConfig())[1]
    "the challenger's AUC 0.4700 is not above 0.5: it ranks no better than chance"
    """
    auc = challenger.get("auc", math.nan)
    if champion is None:
        if not auc > 0.5:  # also False for NaN
            return False, f"no champion, but the challenger's AUC {auc:.4f} is not above 0.5"
        score = _fmt(cfg.metric, challenger.get(cfg.metric, math.nan))
        return True, f"no champion yet; challenger AUC {auc:.4f}, {score}"
    if not math.isnan(auc) and auc <= 0.5:
        return (
            False,
            f"the challenger's AUC {auc:.4f} is not above 0.5: it ranks no better than chance",
        )
    new, old = challenger.get(cfg.metric, math.nan), champion.get(cfg.metric, math.nan)
    if math.isnan(new):
        return False, f"the challenger's {_LABELS[cfg.metric]} is undefined on the hold-out"
    if math.isnan(old) or new > old + cfg.margin:
        return True, (
            f"challenger {_fmt(cfg.metric, new)} beats champion {_fmt(cfg.metric, old)} "
            f"by more than the margin {cfg.margin:.4f}"
        )
    return False, (
        f"challenger {_fmt(cfg.metric, new)} does not beat champion {_fmt(cfg.metric, old)} "
        f"by more than the margin {cfg.margin:.4f}"
    )
