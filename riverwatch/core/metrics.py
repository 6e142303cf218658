"""Prometheus metrics shared by the API and the workers (conventional names and units).

When ``PROMETHEUS_MULTIPROC_DIR`` is set (``riverwatch up`` sets it), every process writes
its samples there and ``GET /metrics`` on the API aggregates them.
"""

from __future__ import annotations

import math
import os
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Iterable, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

EVENTS = Counter(
    "riverwatch_events_total",
    "Records handled, by topic and outcome (accepted, rejected, scored, learned, deadletter, ...).",
    ["topic", "outcome"],
)
GROUP_VALUES_POOLED = Counter(
    "riverwatch_group_values_pooled_total",
    "Observations of a protected attribute's value past RIVERWATCH_MONITOR_MAX_GROUP_VALUES, "
    "counted in the group '(other)', by monitor (fairness, concept).",
    ["monitor"],
)
MONITOR_LATE_EVENTS = Counter(
    "riverwatch_monitor_late_events_total",
    "Scored events the monitor dropped as late, by window kind (time): their time window had "
    "closed (every partition past its end, or the newest event a window's width past it).",
    ["window"],
)
ATTRIBUTE_FILLS = Counter(
    "riverwatch_attribute_fills_total",
    "Transactions scored with the fill value 0.0 for a configured feature attribute "
    "(RIVERWATCH_FEATURE_ATTRIBUTES), by attribute, reason (missing: absent or null; invalid: "
    "not a finite number or bool) and scorer (stream, api).",
    ["attribute", "reason", "scorer"],
)
NONFINITE_SCORES = Counter(
    "riverwatch_nonfinite_scores_total",
    "Model outputs that were NaN or infinite, by model (online, batch, shadow, combined); each "
    "is replaced by the review threshold and its transaction's decision is review (fails closed).",
    ["model"],
)
BATCH_RETRIES = Counter(
    "riverwatch_batch_retries_total",
    "Micro-batches not acknowledged and consumed again after a backoff, by stage and reason "
    "(delivery: outputs not acknowledged by the broker; transient: Redis or Kafka unavailable).",
    ["stage", "reason"],
)
SCORE_LATENCY = Histogram(
    "riverwatch_score_latency_seconds",
    "From the record's Kafka timestamp to its score being produced.",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BATCH_SIZE = Histogram(
    "riverwatch_batch_size",
    "Records per micro-batch, by stage.",
    ["stage"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
BATCH_SECONDS = Histogram(
    "riverwatch_batch_seconds",
    "Wall time from a micro-batch handed to its stage's handler to its outputs handed to the "
    "producer (acknowledgements are not waited for), by stage: the cycle an event waits behind.",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
GC_PAUSES = Histogram(
    "riverwatch_gc_pause_seconds",
    "The garbage collector's pauses in a worker process, by generation (every collection once "
    "the worker started; observed by the batch loops, a batch at most after the pause).",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
HTTP_LATENCY = Histogram(
    "riverwatch_http_request_duration_seconds",
    "API request duration by route and status.",
    ["route", "method", "status"],
)
CONSUMER_LAG = Gauge(
    "riverwatch_consumer_lag",
    "Records behind the partition's high watermark, from librdkafka's statistics (approximate "
    "on the embedded broker, whose watermarks are unreliable); -1 when unknown.",
    ["topic", "partition"],
    multiprocess_mode="livemax",
)
MODEL_VERSION = Gauge(
    "riverwatch_model_version",
    "Version number of the model a process serves (info-style: value is the version).",
    ["model"],
    multiprocess_mode="max",
)

ALERTS = Counter(
    "riverwatch_alerts_total",
    "Alerts stored and fanned out by the dispatcher (after dedup and cooldown).",
    ["kind", "severity"],
)
ALERTS_SUPPRESSED = Counter(
    "riverwatch_alerts_suppressed_total",
    "Alerts the dispatcher held back, by kind and reason (duplicate, cooldown).",
    ["kind", "reason"],
)
WEBHOOK_DELIVERIES = Counter(
    "riverwatch_webhook_deliveries_total",
    "Webhook outcomes: delivered/failed count alerts; retry/refused count POSTs; gone counts "
    "subscriptions disabled by a 410; parked counts alerts set aside as unsendable.",
    ["outcome"],
)
DRIFT_SHARE = Gauge(
    "riverwatch_drift_share",
    "Share of features drifted against the reference in the last closed monitor window (0..1).",
    multiprocess_mode="max",
)
PREDICTION_PSI = Gauge(
    "riverwatch_prediction_psi",
    "PSI of the last monitor window's scores against the reference scores.",
    multiprocess_mode="max",
)
FAIRNESS_DIFFERENCE = Gauge(
    "riverwatch_fairness_difference",
    "Largest between-group gap of the last labeled window, per protected attribute and metric "
    "(demographic_parity_difference, equalized_odds_difference).",
    ["attribute", "metric"],
    multiprocess_mode="max",
)
PERFORMANCE = Gauge(
    "riverwatch_performance",
    "Realised performance of the last labeled window (auc, ap, card_precision, precision, "
    "recall, maturity), per model (online, batch, combined).",
    ["model", "metric"],
    multiprocess_mode="max",
)


def count_fills(fills: Iterable[tuple[str, str]], scorer: str) -> None:
    """Count ``(attribute, reason)`` fills in :data:`ATTRIBUTE_FILLS` (one inc per label set)."""
    for (attribute, reason), n in Tally(fills).items():
        ATTRIBUTE_FILLS.labels(attribute=attribute, reason=reason, scorer=scorer).inc(n)


def observe_many(hist: Histogram, values: Sequence[float]) -> None:
    """``hist.observe(v)`` for every ``v`` of ``values``, as one increment per bucket they fall
    in and one of the sum (their sum, added once: the last bits may differ from adding them one
    by one).

    Written by hand because prometheus-client has no bulk observe, and one observe per event
    is what the scorer paid most for its metrics: in multiprocess mode (``riverwatch up``)
    each increment locks and writes a memory-mapped file, 1.5 us an observe against 0.1 us an
    event here (bench.hotpath). It reads the histogram's private ``_upper_bounds``,
    ``_buckets`` and ``_sum`` (prometheus-client 0.20-0.26, as ``Histogram.observe`` does);
    tests/unit/core/test_metrics_bulk.py holds its exposition to ``observe``'s, so a release
    that renames them fails there. NaN is counted in the sum and in no bucket, as ``observe``
    does it."""
    if not values:
        return
    hist._raise_if_not_observable()
    bounds = hist._upper_bounds
    # bisect_left: the first bound >= v, i.e. the first bucket with v <= bound (observe's test)
    for i, n in Tally(bisect_left(bounds, v) for v in values if not math.isnan(v)).items():
        hist._buckets[i].inc(n)
    hist._sum.inc(sum(values))


def drain(counter: Counter, counts: dict[str, int]) -> None:
    """Add ``counts`` (one label value each, e.g. the monitor core's counts since the last
    call) to ``counter`` and zero them."""
    for label, n in counts.items():
        if n:
            counter.labels(label).inc(n)
            counts[label] = 0


def exposition() -> tuple[bytes, str]:
    """The metrics page body and content type, aggregated across processes when configured."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
