"""The batch path of lone transactions (models.features_batch) gives ``step``'s rows bit for bit."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from riverwatch.models.features import FEATURE_NAMES, WINDOWS_DAYS, FeatureSpec, calendar, step
from riverwatch.models.features_batch import calendars, lone_rows

SPEC = FeatureSpec(3600, 7)
HOSTILE = [0.0, -0.0, 1.0, 2.5, 1e-300, 1e15, 1e16, 1e300, math.inf, -math.inf, math.nan, -3.0]


def _sums(rng: np.random.Generator, k: int, hostile: bool) -> np.ndarray:
    """Stored window sums: plausible counts, sums and maximums, or any of HOSTILE."""
    w = len(WINDOWS_DAYS)
    n = rng.integers(0, 50, (k, w, 1)).astype(float)
    s = np.round(rng.lognormal(3.5, 1.2, (k, w, 1)) * n, 2)
    m = np.round(rng.lognormal(4, 1, (k, w, 1)), 2) * (n > 0)
    out = np.concatenate([n, s, m], axis=2)
    if hostile:
        mask = rng.random(out.shape) < 0.3
        out[mask] = rng.choice(HOSTILE, mask.sum())
    return out


def _expected(epochs, amounts, card, term) -> np.ndarray:  # type: ignore[no-untyped-def]
    rows = []
    for e, a, c, t in zip(
        epochs.tolist(), amounts.tolist(), card.tolist(), term.tolist(), strict=True
    ):
        base_c = [tuple(x) for x in c]
        base_t = [tuple(x) for x in t]
        rows.append(step(SPEC, e, a, {}, {}, base_c, base_t))
    return np.array(rows, dtype=float)


@pytest.mark.parametrize("hostile", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_are_steps_bit_for_bit(seed: int, hostile: bool) -> None:
    rng = np.random.default_rng(seed)
    k = 3000
    epochs = rng.uniform(-3e8, 4.1e9, k)
    epochs[::7] = (
        np.round(epochs[::7] / 3600) * 3600 - rng.choice([0, 1e-7, 4e-7, 5e-7, 1e-6], k)[::7]
    )
    amounts = np.round(rng.lognormal(3.5, 1.0, k), 2)
    if hostile:
        amounts[::5] = rng.choice(HOSTILE, len(amounts[::5]))
    card, term = _sums(rng, k, hostile), _sums(rng, k, hostile)
    got = lone_rows(epochs, amounts, card, term)
    want = _expected(epochs, amounts, card, term)
    assert got.shape == (k, len(FEATURE_NAMES))
    assert got.tobytes() == want.tobytes(), np.argwhere(got != want)[:5]


def test_calendars_round_as_datetime() -> None:
    """Times a hair before an hour, a day or the epoch read as datetime reads them."""
    edges = [0.0, -1e-7, -5e-7, -4e-7, 3599.9999995, 3599.9999996, 86399.9999999, -86400.5]
    rng = np.random.default_rng(3)
    hours = rng.integers(-100_000, 1_200_000, 2000) * 3600.0
    nudges = rng.choice([-1e-6, -6e-7, -5e-7, -4e-7, 0.0, 4e-7, 5e-7], 2000)
    epochs = np.array(edges + (hours + nudges).tolist())
    want = [calendar(e) for e in epochs.tolist()]
    assert calendars(epochs).tolist() == [list(w) for w in want]
    # and the reference itself is datetime's
    e = 3599.9999996
    assert datetime.fromtimestamp(e, UTC).hour == 1 == calendars(np.array([e]))[0, 0]
