"""What a stored feature row records for data quality: the scorer writes it with
:func:`row_quality`, :mod:`monitors.dataquality` reads it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

OPTIONAL = ("customer_id", "channel", "merchant_category")
CATEGORICAL = ("channel", "merchant_category")
ATTR = "attributes."


def row_quality(
    values: Mapping[str, Any], fills: Iterable[tuple[str, str]], partition: int
) -> dict[str, Any]:
    """What a stored feature row records for data quality (the scorer calls it): its
    partition, the optional fields it lacked and the attributes filled as invalid
    (``fills`` of ``models.feature_set.FeatureSet.step``), its categorical values.

    >>> row_quality({"channel": "pos"}, [("risk", "invalid")], 3)
    {'p': 3, 'miss': ['customer_id', 'merchant_category'], 'bad': ['attributes.risk'], \
'cat': {'channel': 'pos'}}
    """
    fills = list(fills)
    out: dict[str, Any] = {"p": partition}
    miss = [f for f in OPTIONAL if values.get(f) is None]
    miss += [ATTR + a for a, why in fills if why == "missing"]
    bad = [ATTR + a for a, why in fills if why != "missing"]
    cat = {f: values[f] for f in CATEGORICAL if values.get(f) is not None}
    for key, v in (("miss", miss), ("bad", bad), ("cat", cat)):
        if v:
            out[key] = v
    return out
