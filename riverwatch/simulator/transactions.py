"""Card transactions and their delayed labels, after the Fraud Detection Handbook's simulator.

The design (not the code) is the Handbook's, chapter 3.2: customers and terminals on a
100x100 grid; each customer pays at terminals within a radius, a Poisson number of times a
day around noon, amounts ~ Normal(mean, mean/2); three fraud scenarios (amount > 220,
compromised terminals for 28 days, compromised customers for 14 days with 5x amounts).
Added here: protected groups, channels and merchant categories, delayed labels, and the
drift and bias hooks documented on :class:`SimConfig` and :class:`GroupBias`.

Generation is vectorized one simulated day at a time (see ``days.py``); only the final
payload dicts are built per event.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from operator import attrgetter

import numpy as np

from riverwatch.simulator.base import DAY_S, SimEvent, epoch_seconds, iso_utc
from riverwatch.simulator.config import GroupBias, SimConfig
from riverwatch.simulator.days import CATEGORY_NAMES, DayArrays, DayGenerator
from riverwatch.simulator.population import Population, build_population

__all__ = ["GroupBias", "SimConfig", "TransactionSimulator"]

_AT = attrgetter("at")
# The options :meth:`TransactionSimulator.change` may change while a simulation runs: the
# ones ``DayGenerator.day`` reads afresh each day.
CHANGEABLE = frozenset({"drift_day", "drift_customers_per_day", "shifts"})


class TransactionSimulator:
    """Simulated card payments with fraud ground truth and labels delayed by days.

    ``events()`` yields :class:`SimEvent` in non-decreasing ``at``: each day's transactions
    interleaved with the labels falling due that day (a transaction's label comes
    ``label_delay_days`` later, so it follows that day's later transactions). Every fraud is
    labelled; a legitimate transaction is labelled with probability ``legit_label_share``.
    When ``n_days`` is finite, the labels still pending after the last day come at the end.

    Event ids are ``tx-{seed}-{n}`` (n counts transactions in time order), cards
    ``card-{i}``, customers ``cust-{i}``, terminals ``term-{j}``. The same config always
    yields the same events, and each call to ``events()`` starts the simulation afresh.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config if config is not None else SimConfig()
        cfg = self.config
        self.population: Population = build_population(
            cfg.n_customers, cfg.n_terminals, cfg.radius, cfg.seed
        )
        # Validates the bias hook now rather than on the first day.
        if cfg.bias is not None:
            self.population.in_group(cfg.bias.attribute, cfg.bias.group)
        pop = self.population
        self._cards = [f"card-{i}" for i in range(pop.n_customers)]
        self._customers = [f"cust-{i}" for i in range(pop.n_customers)]
        self._terminals = [f"term-{j}" for j in range(pop.n_terminals)]
        self._groups = [pop.groups(i) for i in range(pop.n_customers)]
        self._start = epoch_seconds(cfg.start)
        self._days: DayGenerator | None = None

    def change(self, **options: object) -> int:
        """Change the simulated world while ``events()`` runs (the demo injects a drift
        episode this way): ``drift_day``, ``drift_customers_per_day`` or ``shifts``
        (:data:`CHANGEABLE`). Days already generated stay as they were; returns the first
        day not generated yet, the first one the change can reach."""
        if bad := set(options) - CHANGEABLE:
            raise ValueError(f"cannot change {sorted(bad)} while simulating: {sorted(CHANGEABLE)}")
        self.config = replace(self.config, **options)  # type: ignore[arg-type]
        if self._days is None:
            return 0
        self._days.config = self.config
        return self._days.next_day

    @property
    def next_day(self) -> int:
        """The first day ``events()`` has not generated yet (0 before it starts)."""
        return 0 if self._days is None else self._days.next_day

    def events(self) -> Iterator[SimEvent]:
        """Yield transactions and labels in simulated-time order (endless if ``n_days`` is None)."""
        cfg = self.config
        days = self._days = DayGenerator(cfg, self.population)
        pending: deque[SimEvent] = deque()  # labels not yet due, already in time order
        n_tx = 0
        day = 0
        while cfg.n_days is None or day < cfg.n_days:
            arrays = days.day(day)
            day_start = self._start + day * DAY_S
            txs, labels = self._build(arrays, day_start, n_tx)
            n_tx += len(txs)
            pending.extend(labels)
            due = []
            day_end = day_start + DAY_S
            while pending and pending[0].at < day_end:
                due.append(pending.popleft())
            # Transactions first on ties: with a zero delay a label follows its transaction.
            yield from heapq.merge(txs, due, key=_AT) if due else txs
            day += 1
        yield from pending

    def _build(
        self, a: DayArrays, day_start: int, first_id: int
    ) -> tuple[list[SimEvent], list[SimEvent]]:
        """A day's transactions (ids from ``first_id``) and the labels they get."""
        epoch = a.t + day_start
        txs = self._transactions(a, epoch, first_id)
        return txs, self._labels(a, epoch, txs)

    def _transactions(self, a: DayArrays, epoch: np.ndarray, first_id: int) -> list[SimEvent]:
        """The day's transaction events, at epoch seconds ``epoch``."""
        seed = self.config.seed
        ids = [f"tx-{seed}-{n}" for n in range(first_id, first_id + len(a))]
        frauds = (a.scenario > 0).tolist()
        scenarios = a.scenario.tolist()
        stamps = iso_utc(epoch)
        ats = epoch.astype(np.float64).tolist()
        cards, customers, terminals, groups = (
            self._cards,
            self._customers,
            self._terminals,
            self._groups,
        )
        channels = np.where(a.online, "online", "pos").tolist()
        categories = [CATEGORY_NAMES[c] for c in a.category.tolist()]
        return [
            SimEvent(
                at,
                "transactions",
                cards[c],
                {
                    "event_id": eid,
                    "timestamp": ts,
                    "card_id": cards[c],
                    "terminal_id": terminals[tm],
                    "amount": amount,
                    "customer_id": customers[c],
                    "channel": ch,
                    "merchant_category": cat,
                    "groups": dict(groups[c]),
                },
                fraud,
                sc,
            )
            for at, eid, ts, c, tm, amount, ch, cat, fraud, sc in zip(
                ats,
                ids,
                stamps,
                a.cust.tolist(),
                a.term.tolist(),
                a.amount.tolist(),
                channels,
                categories,
                frauds,
                scenarios,
                strict=True,
            )
        ]

    def _labels(self, a: DayArrays, epoch: np.ndarray, txs: list[SimEvent]) -> list[SimEvent]:
        """The label events of the day's labelled transactions ``txs``, ``label_delay_s``
        later."""
        rows = np.flatnonzero(a.labelled)
        delay = self.config.label_delay_s
        label_epoch = epoch[rows] + delay
        label_stamps = iso_utc(label_epoch)
        return [
            SimEvent(
                at,
                "labels",
                txs[r].payload["event_id"],
                {
                    "event_id": txs[r].payload["event_id"],
                    "label": lab,
                    "timestamp": ts,
                    "source": "simulator",
                },
                txs[r].fraud,
                txs[r].scenario,
            )
            for r, at, ts, lab in zip(
                rows.tolist(),
                label_epoch.astype(np.float64).tolist(),
                label_stamps,
                a.label[rows].tolist(),
                strict=True,
            )
        ]
