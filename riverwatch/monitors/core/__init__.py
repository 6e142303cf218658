"""The monitor's pure core: scored rows and labels in, findings and a :class:`Decision` out.

No Redis, Kafka or clock: ``streams.monitor.runner`` feeds it from the topics (joining rows
from Redis and storing results), ``bench.monitor`` feeds it straight from the simulator.

Warm-up and reference (the monitor knows when its inputs can be judged):

* features are still filling until ``warmup_s`` of event time has passed since the first event
  (the longest feature window, 30 days, ends a label delay back for the terminals: 37 days at
  the defaults, ``FeatureSpec.full_days``), so the reference
  collects the ``reference_s`` of events *after* it, and no window is judged before the
  reference is complete; :meth:`MonitorCore.status` says "warming up (reference from ...)";
* label-based findings (concept drift, performance, fairness on outcomes) count only labels of
  events from the reference's start on: those come a label delay later, and the concept
  detectors need ``min_labels`` of them (``ConceptDriftMonitor.min_count``) before a rise counts
  (label windows of the warm-up are computed and stored, for the figures, but not judged);
* :meth:`MonitorCore.restart` moves the reference (an explicit request, or a new champion
  without enough training rows): a new one is collected from then on, with no feature warm-up;
  :meth:`MonitorCore.restart_scores` moves only the score reference (an online-model reset
  changes the scores, not the inputs: features, volume and fairness are still judged);
  :meth:`MonitorCore.set_reference` sets one at once (a champion's training rows).

Per window of scored events (once the reference is ready): per-feature drift overall and per
segment (:mod:`monitors.columns`), prediction drift (score PSI and the flagged share), selection
-rate parity per protected attribute (decisions need no label), and the volume of each segment
(a producer that goes silent); data quality per field (:mod:`monitors.dataquality`, its
reference collected over the same period, the rejected records read through ``rejected``;
:meth:`MonitorCore.quality_state` / ``restore_quality`` carry it over a restart, and it judges
on its own reference while the others are collected again);
performance estimated from the scores (CBPE) against the reference's estimate
(:mod:`monitors.estimated`; stored as ``estimate``, replaced by the realised figures once the
window's labels mature). Per window of labels: fairness on outcomes (selection rate and
equalized odds, :mod:`monitors.fairness.rules`) and performance; per label: concept drift on
each model's error stream. The :class:`monitors.policy.Policy`
turns findings into alerts and control requests.

The parts: :mod:`monitors.core.config` (what it is configured with), ``state`` (what it holds),
``reference`` (warm-up and reference), ``scores`` (windows of scored events) and ``labels``
(labels and their windows); ``snapshot`` carries what it holds in memory only (windows,
reference being collected or set, concept-drift detectors) over a restart.
"""

from __future__ import annotations

from riverwatch.monitors.core.labels import LabelWindows
from riverwatch.monitors.core.scores import ScoreWindows
from riverwatch.monitors.core.snapshot import Snapshots


class MonitorCore(ScoreWindows, LabelWindows, Snapshots):
    """Windows, reference, statistics and policy of one monitor (see the module docstring)."""
