"""What a stored feature row records for data quality: the scorer writes it with
:func:`row_quality`, :mod:`monitors.dataquality` reads it."""

from __future__ import annotations

from collections import Counter
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
    out: dict[str, Any] = {"p": partition}
    miss = [f for f in OPTIONAL if values.get(f) is None]
    fills = fills if isinstance(fills, list) else list(fills)
    bad = None
    if fills:  # (most rows fill nothing: the scorer calls this once an event)
        miss += [ATTR + a for a, why in fills if why == "missing"]
        bad = [ATTR + a for a, why in fills if why != "missing"]
    if miss:
        out["miss"] = miss
    if bad:
        out["bad"] = bad
    if cat := {f: values[f] for f in CATEGORICAL if values.get(f) is not None}:
        out["cat"] = cat
    return out


def row_keys(row: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """What one scored row adds to a window's data-quality and volume tallies, as counted
    keys: ``("g", attribute, value)`` per ``groups`` value, and from its ``dq``: ``("dq",)``,
    ``("p", partition)``, ``("miss", field)``, ``("bad", field)``, ``("cat", field, value)``.
    A time window counts them over all of its events (``monitors.windows.TimeWindows``'s
    ``tally``), however few it keeps.

    >>> row_keys({"groups": {"region": "n"}, "dq": {"p": 1, "miss": ["channel"]}})
    [('g', 'region', 'n'), ('dq',), ('p', '1'), ('miss', 'channel')]
    """
    keys: list[tuple[str, ...]] = [("g", a, str(v)) for a, v in (row.get("groups") or {}).items()]
    dq = row.get("dq")
    if dq is not None:
        keys += [("dq",), ("p", str(dq.get("p")))]
        keys += [("miss", f) for f in dq.get("miss", ())]
        keys += [("bad", f) for f in dq.get("bad", ())]
        keys += [("cat", f, str(v)) for f, v in (dq.get("cat") or {}).items()]
    return keys


def row_partition(row: Mapping[str, Any]) -> str | None:
    """The ``transactions`` partition a scored row came from (None for a row without
    :func:`row_quality`): the monitor's time windows wait for each partition
    (``monitors.windows.TimeWindows``'s ``source``), whose scores come in order (the scorer
    keeps each partition's order and keys its scores by card, as ``transactions`` is keyed).

    >>> row_partition({"dq": {"p": 2}}), row_partition({})
    ('2', None)
    """
    dq = row.get("dq")
    return None if dq is None else str(dq.get("p"))


def tally_rows(rows: Iterable[Mapping[str, Any]]) -> Counter[tuple[str, ...]]:
    """The :func:`row_keys` of ``rows``, counted."""
    out: Counter[tuple[str, ...]] = Counter()
    for r in rows:
        out.update(row_keys(r))
    return out
