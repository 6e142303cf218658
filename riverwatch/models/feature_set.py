"""The model's columns beyond the built-in features: the producer's ``attributes``.

A deployment names the attributes it scores (``RIVERWATCH_FEATURE_ATTRIBUTES``); each becomes
one ``attr_<name>`` column after :data:`riverwatch.models.features.FEATURE_NAMES`, read from
the transaction's ``attributes`` (a finite number or a bool, else :data:`ATTR_FILL`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from riverwatch.core.errors import ConfigError
from riverwatch.core.parsing import ATTRIBUTE_NAME as _ATTR_NAME
from riverwatch.core.parsing import comma_list
from riverwatch.models import features
from riverwatch.models.features import Buckets, FeatureSpec, Sums, step

ATTR_PREFIX = "attr_"
# What a missing, null or non-numeric attribute scores as. Zero, not NaN: the online model
# (StandardScaler | LogisticRegression) would turn one NaN into NaN weights for good.
ATTR_FILL = 0.0


def attribute_value(value: Any) -> float | None:
    """A producer's attribute as a feature value: a finite number or a bool, else None.

    Strings are not parsed (``"3.5"`` is not a number): a producer sends numbers as numbers.

    >>> attribute_value(True), attribute_value(3), attribute_value(2.5)
    (1.0, 3.0, 2.5)
    >>> attribute_value("3.5"), attribute_value(None), attribute_value(float("inf"))
    (None, None, None)
    """
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        try:
            out = float(value)
        except OverflowError:  # an int beyond float range
            return None
        return out if math.isfinite(out) else None
    return None


@dataclass(frozen=True)
class FeatureSet:
    """The model's columns: :data:`FEATURE_NAMES`, then ``attr_<name>`` per chosen attribute.

    Every user (stream scorer, POST /v1/score, learner, training, monitor) builds it from the
    same setting, so they agree on the columns. A stored feature row carries its attribute
    names (``"attrs"``) when it has any, so rows written under another setting still read
    right (:func:`row_features`).

    >>> fs = FeatureSet.parse("device_risk, is_vip")
    >>> fs.names[-2:]
    ('attr_device_risk', 'attr_is_vip')
    >>> fs.extract({"device_risk": 0.7, "is_vip": "yes"})
    ([0.7, 0.0], [('is_vip', 'invalid')])
    >>> FeatureSet().names == features.FEATURE_NAMES
    True
    """

    attributes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if bad := [a for a in self.attributes if not _ATTR_NAME.fullmatch(a)]:
            raise ConfigError(
                f"RIVERWATCH_FEATURE_ATTRIBUTES: invalid attribute names {bad} "
                "(1-64 letters, digits, '_', '.', '-')"
            )
        if len(set(self.attributes)) != len(self.attributes):
            raise ConfigError(
                f"RIVERWATCH_FEATURE_ATTRIBUTES names an attribute twice: {self.attributes}"
            )

    @classmethod
    def parse(cls, text: str) -> FeatureSet:
        """From a comma-separated list of attribute names (``RIVERWATCH_FEATURE_ATTRIBUTES``)."""
        return cls(comma_list(text))

    @property
    def names(self) -> tuple[str, ...]:
        """Every column, in matrix order."""
        if not self.attributes:
            return features.FEATURE_NAMES  # read when asked: the one definition
        return (*features.FEATURE_NAMES, *(ATTR_PREFIX + a for a in self.attributes))

    def extract(self, attributes: Mapping[str, Any]) -> tuple[list[float], list[tuple[str, str]]]:
        """The attribute columns of one transaction, and what had to be filled.

        Each fill is ``(attribute, reason)``, reason ``missing`` (absent or null) or
        ``invalid`` (not a finite number or bool); its value is :data:`ATTR_FILL`.
        """
        values: list[float] = []
        fills: list[tuple[str, str]] = []
        for name in self.attributes:
            raw = attributes.get(name)
            v = attribute_value(raw)
            if v is None:
                fills.append((name, "missing" if raw is None else "invalid"))
                v = ATTR_FILL
            values.append(v)
        return values, fills

    def step(
        self,
        spec: FeatureSpec,
        epoch: float,
        amount: float,
        attributes: Mapping[str, Any],
        card: Buckets,
        terminal: Buckets,
        card_base: Sums | None = None,
        term_base: Sums | None = None,
    ) -> tuple[list[float], list[tuple[str, str]]]:
        """:func:`step` plus the attribute columns: the row every scorer stores and scores."""
        x = step(spec, epoch, amount, card, terminal, card_base, term_base)
        if not self.attributes:
            return x, []
        extra, fills = self.extract(attributes)
        return x + extra, fills

    def row_meta(self) -> dict[str, Any]:
        """What a stored feature row records about its columns (nothing by default)."""
        return {"attrs": list(self.attributes)} if self.attributes else {}


def row_names(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The column names of a stored feature row's ``"x"`` (see :meth:`FeatureSet.row_meta`)."""
    return _row_names(tuple(row.get("attrs") or ()))


@functools.lru_cache(maxsize=64)
def _row_names(attrs: tuple[str, ...]) -> tuple[str, ...]:
    # Rows share a few attribute lists: building a FeatureSet per row (checking its names)
    # was a tenth of the monitor's CPU per score. Errors are raised again, never cached.
    return FeatureSet(attrs).names


def row_features(row: Mapping[str, Any]) -> dict[str, float]:
    """A stored feature row's ``"x"`` as ``{name: value}``, whatever the setting was then.

    >>> row_features({"x": list(range(len(features.FEATURE_NAMES) + 1)), "attrs": ["a"]})["attr_a"]
    21
    """
    return dict(zip(row_names(row), row["x"], strict=True))
