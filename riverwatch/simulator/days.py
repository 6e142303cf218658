"""One simulated day of transactions as numpy arrays: the vectorized heart of the simulator.

Each day draws from its own random streams (``[seed, stream, day]``), one per concern
(legitimate traffic, fraud, drift, bias, labels). Turning a hook on therefore adds its own
effect without reshuffling everything else: the legitimate traffic of a run with drift is
the legitimate traffic of the same seed without it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from riverwatch.simulator.base import DAY_S
from riverwatch.simulator.config import SimConfig
from riverwatch.simulator.population import CATEGORIES, Population

DIGITAL_GOODS = len(CATEGORIES)  # category code of the drift pattern, after the usual ones
CATEGORY_NAMES = (*CATEGORIES, "digital_goods")
FRAUD_AMOUNT = 220.0
TERMINAL_DAYS = 28
CUSTOMER_DAYS = 14

_BASE, _FRAUD, _DRIFT, _BIAS, _LABELS, _STEP = range(1, 7)


@dataclass(frozen=True, eq=False)
class DayArrays:
    """One day's transactions, sorted by ``t`` (seconds into the day); one row per transaction.

    ``scenario`` is the ground truth (0 legitimate, 1-4 fraud); ``label`` is what the label
    stream will say (it differs from the truth only under ``GroupBias.mislabel_share``) and
    ``labelled`` whether a label is emitted at all.
    """

    t: np.ndarray
    cust: np.ndarray
    term: np.ndarray
    amount: np.ndarray
    online: np.ndarray
    category: np.ndarray
    scenario: np.ndarray
    label: np.ndarray
    labelled: np.ndarray

    def __len__(self) -> int:
        return len(self.t)


def _count(rng: np.random.Generator, rate: float) -> int:
    """``rate`` rounded at random so that the expected count equals ``rate``."""
    whole = int(rate)
    return whole + int(rng.random() < rate - whole)


class DayGenerator:
    """Produce consecutive days (0, 1, 2, ...) of a simulation; keeps the fraud state.

    Call :meth:`day` with 0, 1, 2, ... in order: compromised terminals and customers carry
    over from one day to the next.
    """

    def __init__(self, config: SimConfig, population: Population) -> None:
        self.config = config
        self.pop = population
        self._terminals: deque[np.ndarray] = deque(maxlen=TERMINAL_DAYS)
        self._customers: deque[np.ndarray] = deque(maxlen=CUSTOMER_DAYS)
        bias = config.bias
        self._biased = (
            population.in_group(bias.attribute, bias.group)
            if bias is not None
            else np.zeros(population.n_customers, dtype=bool)
        )
        self._next_day = 0

    @property
    def next_day(self) -> int:
        """The day :meth:`day` generates next."""
        return self._next_day

    def _members(self, attribute: str | None, group: str | None) -> np.ndarray:
        if attribute is None or group is None:
            return np.ones(self.pop.n_customers, dtype=bool)
        return self.pop.in_group(attribute, group)

    def _rng(self, stream: int, day: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, stream, day])

    def day(self, day: int) -> DayArrays:
        """Generate day ``day`` (must be the day after the previous call, starting at 0)."""
        if day != self._next_day:
            raise ValueError(f"days must be generated in order: expected {self._next_day}")
        self._next_day += 1
        t, cust, term, amount, online = self._legitimate(self._rng(_BASE, day))
        if self.config.bias is not None and day >= self.config.bias.from_day:
            self._spike(self._rng(_BIAS, day), cust, amount)
        boost = 1.0
        for shift in self.config.shifts:
            if not (k := shift.strength(day)):
                continue
            hit = self._members(shift.attribute, shift.group)[cust]
            if shift.kind == "amount":
                amount[hit] = np.round(amount[hit] * (1 + (shift.factor - 1) * k), 2)
            elif shift.kind == "fraud":
                boost *= 1 + (shift.factor - 1) * k
            elif shift.kind == "fraud_step":  # the stock at once, then the inflow
                boost *= shift.factor
                if day == shift.day:
                    self._step_stock(self._rng(_STEP, day), shift.factor)
            else:  # outage: the group's transactions never reach anyone
                t, cust, term, amount, online = (a[~hit] for a in (t, cust, term, amount, online))
        scenario = self._fraud(self._rng(_FRAUD, day), cust, term, amount, boost)
        category = self.pop.term_category[term]
        drift_day = self.config.drift_day
        if drift_day is not None and day >= drift_day:
            extra = self._card_testing(self._rng(_DRIFT, day))
            t, cust, term, amount, online, category, scenario = (
                np.concatenate([a, b])
                for a, b in zip(
                    (t, cust, term, amount, online, category, scenario), extra, strict=True
                )
            )
        order = np.argsort(t, kind="stable")
        t, cust, scenario = t[order], cust[order], scenario[order]
        label, labelled = self._labels(self._rng(_LABELS, day), cust, scenario)
        return DayArrays(
            t=t,
            cust=cust,
            term=term[order],
            amount=amount[order],
            online=online[order],
            category=category[order],
            scenario=scenario,
            label=label,
            labelled=labelled,
        )

    def _legitimate(self, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        pop = self.pop
        nearby = pop.n_nearby
        counts = rng.poisson(pop.mean_tx_per_day)
        counts[nearby == 0] = 0  # no terminal within reach: the customer cannot pay anywhere
        cust = np.repeat(np.arange(pop.n_customers), counts)
        n = len(cust)
        t = np.floor(rng.normal(DAY_S / 2, 20_000, size=n)).astype(np.int64)
        mean = pop.mean_amount[cust]
        amount = rng.normal(mean, pop.std_amount[cust])
        negative = amount < 0
        amount[negative] = rng.uniform(0, 2 * mean[negative])
        amount = np.round(amount, 2)
        pick = (rng.random(n) * nearby[cust]).astype(np.int64)
        term = pop.term_flat[pop.term_offsets[cust] + pick]
        online = rng.random(n) < pop.online_share[cust]
        # Times beyond the day are dropped, not wrapped (as in the Handbook).
        keep = (t >= 0) & (t < DAY_S)
        return t[keep], cust[keep], term[keep], amount[keep], online[keep]

    def _spike(self, rng: np.random.Generator, cust: np.ndarray, amount: np.ndarray) -> None:
        bias = self.config.bias
        assert bias is not None
        eligible = self._biased[cust] & (amount <= FRAUD_AMOUNT)
        spike = eligible & (rng.random(len(cust)) < bias.spike_share)
        amount[spike] = np.minimum(np.round(amount[spike] * bias.spike_factor, 2), FRAUD_AMOUNT)

    def _fraud(
        self,
        rng: np.random.Generator,
        cust: np.ndarray,
        term: np.ndarray,
        amount: np.ndarray,
        boost: float = 1.0,
    ) -> np.ndarray:
        pop, cfg = self.pop, self.config
        k_term = min(_count(rng, cfg.terminals_per_day * boost), pop.n_terminals)
        self._terminals.append(rng.choice(pop.n_terminals, size=k_term, replace=False))
        k_cust = min(_count(rng, cfg.customers_per_day * boost), pop.n_customers)
        self._customers.append(rng.choice(pop.n_customers, size=k_cust, replace=False))
        # Later scenarios overwrite earlier ones, so each fraud carries one scenario id.
        scenario = np.zeros(len(cust), dtype=np.int8)
        scenario[amount > FRAUD_AMOUNT] = 1
        scenario[np.isin(term, np.concatenate(self._terminals))] = 2
        stolen = np.isin(cust, np.concatenate(self._customers))
        stolen &= rng.random(len(cust)) < 1 / 3
        amount[stolen] = np.round(amount[stolen] * 5, 2)
        scenario[stolen] = 3
        return scenario

    def _step_stock(self, rng: np.random.Generator, factor: float) -> None:
        """Multiply the stock of compromised terminals and customers by ``factor`` at once.

        Each earlier day's batch still compromised today gets ``factor - 1`` times as many
        more (not yet compromised, drawn uniformly like the originals), so they share that
        batch's remaining days and the stock's age profile is kept. The batch that leaves
        the stock today is skipped. Runs before :meth:`_fraud` appends today's batch.
        """
        for stock, n in (
            (self._terminals, self.pop.n_terminals),
            (self._customers, self.pop.n_customers),
        ):
            live = range(len(stock) == stock.maxlen, len(stock))
            for i in live:
                taken = np.concatenate([*stock, np.empty(0, dtype=np.int64)])
                free = np.setdiff1d(np.arange(n), taken)
                k = min(_count(rng, len(stock[i]) * (factor - 1)), len(free))
                stock[i] = np.concatenate([stock[i], rng.choice(free, size=k, replace=False)])

    def _card_testing(self, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        pop = self.pop
        k = min(_count(rng, self.config.drift_per_day), pop.n_customers)
        victims = rng.choice(pop.n_customers, size=k, replace=False)
        sizes = rng.integers(3, 11, size=k)
        cust = np.repeat(victims, sizes)
        n = len(cust)
        first = np.repeat(np.cumsum(sizes) - sizes, sizes)  # index of each burst's first row
        elapsed = np.cumsum(rng.integers(10, 601, size=n))
        elapsed = elapsed - elapsed[first]  # seconds since the burst's first payment
        t = np.repeat(rng.integers(0, 4 * 3600, size=k), sizes) + elapsed
        amount = np.round(rng.uniform(0.5, 5.0, size=n), 2)
        term = rng.integers(0, pop.n_terminals, size=n)
        online = np.ones(n, dtype=bool)
        category = np.full(n, DIGITAL_GOODS, dtype=np.int8)
        scenario = np.full(n, 4, dtype=np.int8)
        return t.astype(np.int64), cust, term, amount, online, category, scenario

    def _labels(
        self, rng: np.random.Generator, cust: np.ndarray, scenario: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        fraud = scenario > 0
        labelled = fraud | (rng.random(len(cust)) < self.config.legit_label_share)
        label = fraud.astype(np.int8)
        bias = self.config.bias
        if bias is not None and bias.mislabel_share > 0:
            flip = ~fraud & self._biased[cust] & (rng.random(len(cust)) < bias.mislabel_share)
            label[flip] = 1
            labelled |= flip
        return label, labelled
