"""Customer and terminal profiles of the transaction simulator, drawn once from the seed.

The design follows the Fraud Detection Handbook's simulator (chapter 3.2): customers and
terminals placed uniformly on a 100x100 grid, each customer using the terminals within a
radius. Protected-group attributes are added here so fairness monitors have something to
measure: ``age_band`` drawn from a fixed distribution, ``region`` from where a customer lives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

GRID = 100.0
AGE_BANDS = ("18-24", "25-34", "35-49", "50-64", "65+")
AGE_BAND_P = (0.12, 0.20, 0.28, 0.24, 0.16)
REGIONS = ("north", "south", "east", "west")
CATEGORIES = ("grocery", "restaurant", "fuel", "retail", "travel", "electronics")
CATEGORY_P = (0.30, 0.20, 0.15, 0.20, 0.05, 0.10)


@dataclass(frozen=True, eq=False)
class Population:
    """Arrays describing every customer (index = customer number) and terminal.

    Customer ``i`` uses terminals ``term_flat[term_offsets[i]:term_offsets[i + 1]]``;
    an empty slice means the customer makes no transactions (as in the Handbook).
    """

    cust_xy: np.ndarray
    mean_amount: np.ndarray
    std_amount: np.ndarray
    mean_tx_per_day: np.ndarray
    online_share: np.ndarray
    age_band: np.ndarray
    region: np.ndarray
    term_xy: np.ndarray
    term_category: np.ndarray
    term_offsets: np.ndarray
    term_flat: np.ndarray

    @property
    def n_customers(self) -> int:
        """How many customers there are."""
        return len(self.mean_amount)

    @property
    def n_terminals(self) -> int:
        """How many terminals there are."""
        return len(self.term_xy)

    @property
    def n_nearby(self) -> np.ndarray:
        """How many terminals each customer can use."""
        return np.diff(self.term_offsets)

    def groups(self, customer: int) -> dict[str, str]:
        """The protected-group attributes of one customer, as sent in ``Transaction.groups``."""
        return {
            "age_band": AGE_BANDS[self.age_band[customer]],
            "region": REGIONS[self.region[customer]],
        }

    def in_group(self, attribute: str, group: str) -> np.ndarray:
        """Boolean mask of the customers whose ``attribute`` equals ``group``."""
        names = {"age_band": AGE_BANDS, "region": REGIONS}.get(attribute)
        if names is None:
            raise ValueError(f"unknown group attribute {attribute!r}; known: age_band, region")
        if group not in names:
            raise ValueError(f"unknown {attribute} {group!r}; known: {', '.join(names)}")
        codes = self.age_band if attribute == "age_band" else self.region
        return np.asarray(codes == names.index(group))


def _region(xy: np.ndarray) -> np.ndarray:
    # Four triangles meeting at the grid's centre: equal areas, so regions have similar sizes.
    dx, dy = xy[:, 0] - GRID / 2, xy[:, 1] - GRID / 2
    vertical = np.abs(dy) >= np.abs(dx)
    return np.where(vertical, np.where(dy >= 0, 0, 1), np.where(dx >= 0, 2, 3)).astype(np.int8)


def build_population(n_customers: int, n_terminals: int, radius: float, seed: int) -> Population:
    """Draw customers and terminals from ``seed`` and link each customer to nearby terminals.

    The same arguments always give the same population. The radius lookup is one KD-tree
    query, so 5,000 customers x 10,000 terminals takes a few tens of milliseconds.
    """
    rng = np.random.default_rng([seed, 0])
    cust_xy = rng.uniform(0, GRID, size=(n_customers, 2))
    mean_amount = rng.uniform(5, 100, size=n_customers)
    mean_tx = rng.uniform(0, 4, size=n_customers)
    online_share = rng.uniform(0.05, 0.35, size=n_customers)
    age_band = rng.choice(len(AGE_BANDS), size=n_customers, p=AGE_BAND_P).astype(np.int8)
    term_xy = rng.uniform(0, GRID, size=(n_terminals, 2))
    term_category = rng.choice(len(CATEGORIES), size=n_terminals, p=CATEGORY_P).astype(np.int8)

    nearby = cKDTree(term_xy).query_ball_point(cust_xy, r=radius, return_sorted=True)
    counts = np.fromiter((len(n) for n in nearby), dtype=np.int64, count=n_customers)
    offsets = np.zeros(n_customers + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = (
        np.concatenate([np.asarray(n, dtype=np.int64) for n in nearby])
        if offsets[-1]
        else np.zeros(0, dtype=np.int64)
    )
    return Population(
        cust_xy=cust_xy,
        mean_amount=mean_amount,
        std_amount=mean_amount / 2,
        mean_tx_per_day=mean_tx,
        online_share=online_share,
        age_band=age_band,
        region=_region(cust_xy),
        term_xy=term_xy,
        term_category=term_category,
        term_offsets=offsets,
        term_flat=flat,
    )
