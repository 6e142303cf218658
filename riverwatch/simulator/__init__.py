"""Simulators that feed riverwatch: card transactions with delayed labels, and metric series.

Typical use: build a :class:`TransactionSimulator` and some :class:`SeriesSimulator`,
:func:`merge` their ``events()``, and :func:`pump` them into a :class:`KafkaSink`,
:class:`HttpSink` or :class:`NdjsonSink` at a chosen speed (simulated days per real minute).
Every :class:`SimEvent` carries its ground truth (``fraud``, ``scenario``, ``anomaly``) beside
the payload, never inside it.
"""

from riverwatch.simulator.base import SimEvent, SimTopic
from riverwatch.simulator.config import GroupBias, Shift, SimConfig
from riverwatch.simulator.pacing import merge, paced, paced_batches, pump
from riverwatch.simulator.population import AGE_BANDS, REGIONS, Population
from riverwatch.simulator.series import SeriesConfig, SeriesSimulator
from riverwatch.simulator.sinks import (
    HttpSink,
    KafkaSink,
    NdjsonSink,
    Sink,
    SinkError,
    read_ndjson,
)
from riverwatch.simulator.transactions import TransactionSimulator

__all__ = [
    "AGE_BANDS",
    "REGIONS",
    "GroupBias",
    "HttpSink",
    "KafkaSink",
    "NdjsonSink",
    "Population",
    "SeriesConfig",
    "SeriesSimulator",
    "Shift",
    "SimConfig",
    "SimEvent",
    "SimTopic",
    "Sink",
    "SinkError",
    "TransactionSimulator",
    "merge",
    "paced",
    "paced_batches",
    "pump",
    "read_ndjson",
]
