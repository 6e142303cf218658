"""The feature rows of a batch's lone transactions at once (numpy): the stream's fast path.

A transaction *alone* in its batch, the only one there on its card and on its terminal, needs
nothing of the batch from :func:`riverwatch.models.features.step`: its card's own buckets hold
just its amount, its terminal's none yet. Its row is the stored window sums plus its amount,
which this module computes for every such transaction of a batch with array operations: the
same floating-point operations in the same order as ``step``'s, so each row is bit for bit
``step``'s (``tests/unit/models/test_features_batch.py`` checks that on random and hostile
sums). Most transactions of a live batch are alone (5,000 cards, batches of 500: about 9 in
10); the stream scorer gives the others to ``step``, in order.

Why by hand and not a library: the per-transaction Python of ``step`` was about a sixth of
the scorer's CPU per event (``bench.hotpath``); numpy over the batch is what removes it.
"""

from __future__ import annotations

import numpy as np

from riverwatch.models.features import AMOUNT_CAP, FEATURE_CAP, FEATURE_NAMES, WINDOWS_DAYS

_HOUR, _DAY = 3600.0, 86_400.0


def calendars(epochs: np.ndarray) -> np.ndarray:
    """:func:`riverwatch.models.features.calendar` of each event time: hour (UTC), weekend,
    night, as columns.

    ``datetime.fromtimestamp`` rounds a time to the microsecond (half to even) before it
    takes the second, so this does too: 3599.9999996 is hour 1.

    >>> calendars(np.array([0.0, 3599.9999996, 5 * 86400.0 + 7 * 3600, -1.0])).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [7.0, 0.0, 0.0], [23.0, 0.0, 0.0]]
    """
    whole = np.trunc(epochs)
    micros = np.round((epochs - whole) * 1e6)  # half to even, as CPython's _PyTime rounding
    seconds = whole + (micros >= 1e6) - (micros < 0)
    hour = np.floor_divide(seconds, _HOUR) % 24
    weekday = (np.floor_divide(seconds, _DAY) + 3) % 7  # 1970-01-01 was a Thursday (3)
    return np.stack([hour, (weekday >= 5).astype(float), (hour < 6).astype(float)], axis=1)


def lone_rows(
    epochs: np.ndarray, amounts: np.ndarray, card: np.ndarray, term: np.ndarray
) -> np.ndarray:
    """The rows (columns :data:`FEATURE_NAMES`) of lone transactions from their event times,
    amounts and stored window sums: ``card`` and ``term`` are ``[transaction, window, (count,
    value sum, value max)]`` for the windows of :data:`WINDOWS_DAYS`, the card's ending at the
    transaction's bucket, the terminal's ``delay_buckets`` before it (the store's sums, as
    ``step``'s ``card_base`` and ``term_base``)."""
    k, w = len(epochs), len(WINDOWS_DAYS)
    out = np.empty((k, len(FEATURE_NAMES)))
    # safe_amount: [0, AMOUNT_CAP], NaN as 0.0
    a = np.where((amounts >= 0.0) & (amounts <= AMOUNT_CAP), amounts, 0.0)
    a = np.where(amounts > AMOUNT_CAP, AMOUNT_CAP, a)
    out[:, 0] = a
    out[:, 1:4] = calendars(epochs)
    # the card's windows: the stored sums plus this transaction (count 1, its amount, its
    # maximum where larger; window_sums starts at 0.0, so a zero amount adds no maximum)
    n = card[:, :, 0] + 1.0
    total = card[:, :, 1] + (0.0 + a)[:, None]  # window_sums' 0.0 + amount: -0.0 reads 0.0
    own_max = np.where(a > 0.0, a, 0.0)[:, None]
    top = np.where(card[:, :, 2] > own_max, card[:, :, 2], own_max)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mean = np.where(n != 0.0, total / np.where(n != 0.0, n, 1.0), 0.0)
        out[:, 4 : 4 + 2 * w : 2] = n
        out[:, 5 : 5 + 2 * w : 2] = mean
        c = 4 + 2 * w  # the ratios of the windows after the first: amount * n / total
        ratio = a[:, None] * n[:, 1:] / np.where(total[:, 1:] > 0.0, total[:, 1:], 1.0)
        out[:, c : c + w - 1] = np.where(total[:, 1:] > 0.0, ratio, 1.0)
        t = c + w - 1  # the terminal's windows: the stored sums alone
        tn, frauds = term[:, :, 0], term[:, :, 1]
        out[:, t : t + 2 * w : 2] = tn
        out[:, t + 1 : t + 2 * w : 2] = np.where(
            tn != 0.0, frauds / np.where(tn != 0.0, tn, 1.0), 0.0
        )
        m = t + 2 * w  # the card's maximums of 1 and 7 days, the amount over the latter
        out[:, m] = top[:, 0]
        out[:, m + 1] = top[:, 1]
        out[:, m + 2] = np.where(
            top[:, 1] > 0.0, a / np.where(top[:, 1] > 0.0, top[:, 1], 1.0), 1.0
        )
    # finite: clipped to [-FEATURE_CAP, FEATURE_CAP], NaN as 0.0
    np.clip(out, -FEATURE_CAP, FEATURE_CAP, out=out)
    out[np.isnan(out)] = 0.0
    return out
