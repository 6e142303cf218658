"""The monitor's feature matrix (streams.monitor.data.feature_frame), filled in one pass, is
the frame pandas builds from the rows' named values: rows with and without attribute columns,
None, NaN, infinities and ints, names in any order, columns no row has."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest

from riverwatch.models.feature_set import row_features
from riverwatch.models.features import FEATURE_NAMES
from riverwatch.monitors.core.config import RowCodec
from riverwatch.monitors.lazy import Unpacked
from riverwatch.streams.monitor.data import feature_frame

NAME_SETS = [
    list(FEATURE_NAMES),
    [*FEATURE_NAMES[:5], "attr_risk", "attr_other"],
    ["attr_zz", "amount"],
    [*FEATURE_NAMES, "attr_risk"],
]


def by_names(rows: list[dict], names: list[str]) -> pd.DataFrame:
    """What the frame must be: each row's values by name (pandas), in ``names``' order."""
    return pd.DataFrame([row_features(r) for r in rows], dtype=float).reindex(columns=names)


@pytest.mark.parametrize("seed", range(40))
def test_the_one_pass_frame_is_the_frame_of_the_rows_values_by_name(seed: int) -> None:
    rng = random.Random(seed)
    rows = []
    for _ in range(rng.randint(1, 30)):
        attrs = rng.choice([(), (), ("risk",), ("risk", "other"), ("zz",)])
        values = (rng.random(), None, 3, math.inf, math.nan)
        x = [rng.choice(values) for _ in range(len(FEATURE_NAMES) + len(attrs))]
        rows.append({"x": x, **({"attrs": list(attrs)} if attrs else {})})
    names = NAME_SETS[seed % len(NAME_SETS)]
    codec = RowCodec()
    packed = Unpacked([codec.pack(r) for r in rows], codec.unpack)  # as a closed day window
    for given in (rows, packed, iter(rows)):
        got = feature_frame(given, names)
        assert list(got.columns) == names and all(t == np.float64 for t in got.dtypes)
        want = by_names(rows, names).to_numpy(dtype=float)
        assert np.array_equal(got.to_numpy(), want, equal_nan=True)


def test_a_row_of_an_older_feature_set_is_padded_and_one_too_long_refused() -> None:
    short = {"x": [1.0, 2.0]}  # stored before features were added: the rest are NaN
    got = feature_frame([short], FEATURE_NAMES).to_numpy()[0]
    assert got[:2].tolist() == [1.0, 2.0] and np.isnan(got[2:]).all()
    with pytest.raises(ValueError, match="values"):
        feature_frame([{"x": [1.0] * (len(FEATURE_NAMES) + 1)}], FEATURE_NAMES)
    with pytest.raises(ValueError, match="values"):
        feature_frame([{"x": [1.0], "attrs": ["risk"]}], FEATURE_NAMES)
