"""Configuration of the transaction simulator, including its drift and bias hooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

# The Handbook's scale; the per-day fraud counts below scale with the population so that a
# small simulation keeps the Handbook's fraud rate (~0.5-1%) instead of drowning in fraud.
HANDBOOK_CUSTOMERS = 5_000
HANDBOOK_TERMINALS = 10_000


@dataclass(frozen=True)
class GroupBias:
    """Make the simulated world treat one protected group differently (a fairness test bed).

    What it does, exactly, to customers whose ``groups[attribute] == group``:

    - ``spike_share`` of their *legitimate* transactions (those with amount <= 220) have their
      amount multiplied by ``spike_factor``, capped at 220.00, so they stay legitimate under
      scenario 1 yet look like scenario 3 (a compromised card spending ~5x its usual amount).
      A model that learnt "amount far above this customer's average -> fraud" therefore
      declines more of this group's honest payments: a higher false positive rate for the
      group, with the ground truth (``SimEvent.fraud``) unchanged.
    - ``mislabel_share`` of their legitimate transactions get label 1 in the label stream
      (``SimEvent.fraud`` stays False): a labelling process biased against the group. A model
      learning from those labels inherits the bias; a fairness monitor comparing against the
      ground truth sees it. Default 0 (off).

    ``attribute`` is ``"age_band"`` or ``"region"``; an unknown group raises at start-up.
    """

    attribute: str = "age_band"
    group: str = "65+"
    spike_share: float = 0.15
    spike_factor: float = 4.0
    mislabel_share: float = 0.0
    from_day: int = 0
    """The first simulated day (0-based) the bias applies on (a bias that appears later)."""

    def __post_init__(self) -> None:
        for name in ("spike_share", "mislabel_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"GroupBias.{name} must be within [0, 1]")
        if self.spike_factor < 1.0:
            raise ValueError("GroupBias.spike_factor must be >= 1")


@dataclass(frozen=True)
class Shift:
    """A change of the simulated world from ``day`` on (a monitor's test bed), one of:

    - ``"amount"``: legitimate amounts multiplied by ``factor`` (a spending shift);
    - ``"fraud"``: the compromised terminals and customers per day multiplied by ``factor``
      (more fraud of the known kinds: a label shift);
    - ``"fraud_step"``: a step of prevalence (a textbook label shift): on ``day`` the stock of
      compromised terminals and customers is multiplied by ``factor`` at once (more of them,
      compromised with the same mechanics), and so is their daily inflow from then on, so the
      stock stays multiplied. ``"fraud"`` only multiplies the inflow: with terminals compromised
      for 28 days and cards for 14, the prevalence then builds up over weeks;
    - ``"outage"``: no transaction at all for ``days`` days (a producer that goes silent).

    ``attribute``/``group`` (e.g. ``"region"``, ``"south"``) limit an ``amount`` or ``outage``
    shift to one protected group's customers; ``ramp_days`` > 0 makes an ``amount`` or
    ``fraud`` shift gradual, reaching ``factor`` linearly over that many days.
    """

    kind: str
    day: int
    factor: float = 1.5
    attribute: str | None = None
    group: str | None = None
    ramp_days: int = 0
    days: int = 2

    def __post_init__(self) -> None:
        if self.kind not in ("amount", "fraud", "fraud_step", "outage"):
            raise ValueError(
                f"Shift.kind must be amount, fraud, fraud_step or outage, got {self.kind!r}"
            )
        if self.kind == "fraud_step" and (self.ramp_days or self.factor < 1):
            raise ValueError("a fraud_step shift is a step up: ramp_days 0, factor >= 1")
        if self.day < 0 or self.ramp_days < 0 or self.days < 1 or self.factor < 0:
            raise ValueError("Shift needs day >= 0, ramp_days >= 0, days >= 1, factor >= 0")
        if (self.attribute is None) != (self.group is None):
            raise ValueError("Shift.attribute and Shift.group go together")

    def strength(self, day: int) -> float:
        """How far the shift has gone on ``day``: 0 before it, up to 1 once ramped."""
        if day < self.day or (self.kind == "outage" and day >= self.day + self.days):
            return 0.0
        return min(1.0, (day - self.day + 1) / self.ramp_days) if self.ramp_days else 1.0


@dataclass(frozen=True)
class SimConfig:
    """Everything the transaction simulator needs; the same config always gives the same events.

    Defaults are the Fraud Detection Handbook's scale: 5,000 customers, 10,000 terminals,
    radius 5 on a 100x100 grid, about 10,000 transactions a simulated day. ``n_days=None``
    simulates forever. ``label_delay_days`` may be fractional (rounded to whole seconds).

    Fraud per simulated day (``None`` means "the Handbook's count scaled to this population"):

    - ``compromised_terminals_per_day`` (2 per 10,000 terminals): each compromised terminal's
      transactions are fraud for 28 days (scenario 2);
    - ``compromised_customers_per_day`` (3 per 5,000 customers): over 14 days a third of the
      customer's transactions are fraud with 5x the amount (scenario 3).

    A fractional count is rounded at random (2.3 -> 2 or 3, 3 with probability 0.3).

    ``drift_day``: from that day on (0-based), a fraud pattern appears that the Handbook
    scenarios never produce, so a model trained before it cannot know it (scenario 4,
    "card testing"): each day ``drift_customers_per_day`` cards (default 10 per 5,000
    customers) each get one burst of 3-10 small online payments (0.50-5.00, category
    ``digital_goods``), 10 s to 10 min apart, starting in the first 4 hours of the simulated
    day (00:00-04:00 UTC with the default midnight ``start``), at terminals drawn uniformly
    from all terminals (so rarely the customer's usual ones). Only ~6% of legitimate payments
    fall before 04:00 (times ~ Normal(noon, 20,000 s)), so the data distribution shifts
    (night, online, small amounts) as well as the fraud mix. ``None`` turns drift off.

    ``bias``: see :class:`GroupBias`; ``None`` (default) treats every group alike.
    ``shifts``: changes of the world from a given day on, see :class:`Shift`.
    """

    seed: int = 0
    n_customers: int = HANDBOOK_CUSTOMERS
    n_terminals: int = HANDBOOK_TERMINALS
    radius: float = 5.0
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    n_days: int | None = None
    label_delay_days: float = 7
    legit_label_share: float = 1.0
    compromised_terminals_per_day: float | None = None
    compromised_customers_per_day: float | None = None
    drift_day: int | None = None
    drift_customers_per_day: float | None = None
    bias: GroupBias | None = None
    shifts: tuple[Shift, ...] = ()

    def __post_init__(self) -> None:
        if self.n_customers < 1 or self.n_terminals < 1:
            raise ValueError("SimConfig needs at least one customer and one terminal")
        if self.radius <= 0:
            raise ValueError("SimConfig.radius must be > 0")
        if self.n_days is not None and self.n_days < 0:
            raise ValueError("SimConfig.n_days must be >= 0 or None (endless)")
        if self.label_delay_days < 0:
            raise ValueError("SimConfig.label_delay_days must be >= 0")
        if not 0.0 <= self.legit_label_share <= 1.0:
            raise ValueError("SimConfig.legit_label_share must be within [0, 1]")
        for name in (
            "compromised_terminals_per_day",
            "compromised_customers_per_day",
            "drift_customers_per_day",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"SimConfig.{name} must be >= 0")
        if self.drift_day is not None and self.drift_day < 0:
            raise ValueError("SimConfig.drift_day must be >= 0 or None")

    @property
    def terminals_per_day(self) -> float:
        """Terminals compromised each day (scenario 2), after scaling."""
        if self.compromised_terminals_per_day is not None:
            return self.compromised_terminals_per_day
        return 2 * self.n_terminals / HANDBOOK_TERMINALS

    @property
    def customers_per_day(self) -> float:
        """Customers compromised each day (scenario 3), after scaling."""
        if self.compromised_customers_per_day is not None:
            return self.compromised_customers_per_day
        return 3 * self.n_customers / HANDBOOK_CUSTOMERS

    @property
    def drift_per_day(self) -> float:
        """Cards hit by a card-testing burst each day once drift has started."""
        if self.drift_customers_per_day is not None:
            return self.drift_customers_per_day
        return 10 * self.n_customers / HANDBOOK_CUSTOMERS

    @property
    def label_delay_s(self) -> int:
        """The label delay in whole simulated seconds."""
        return round(self.label_delay_days * 86_400)
