"""Topic names and Redis keys: the only place api/ and streams/ agree on where things live.

Every name carries ``settings.topic_prefix`` so tests (and tenants) can share a broker and a
Redis without seeing each other's data.
"""

from __future__ import annotations

from dataclasses import dataclass

TOPICS = (
    "transactions",
    "labels",
    "metrics",
    "scores",
    "forecasts",
    "alerts",
    "control",
    "deadletter",
)


@dataclass(frozen=True)
class Names:
    """Topic, consumer-group and key names under one prefix.

    >>> n = Names("t1-")
    >>> n.topic("scores"), n.score("e9")
    ('t1-scores', 't1-rw:score:e9')
    """

    prefix: str = ""

    def topic(self, name: str) -> str:
        """The full name of one of :data:`TOPICS`."""
        if name not in TOPICS:
            raise ValueError(f"unknown topic {name!r}; known: {', '.join(TOPICS)}")
        return f"{self.prefix}{name}"

    def all_topics(self) -> list[str]:
        """Every topic riverwatch uses, prefixed."""
        return [self.topic(t) for t in TOPICS]

    def group(self, base: str, role: str) -> str:
        """The consumer group of one role (scorer, learner, ...)."""
        return f"{self.prefix}{base}-{role}"

    # Redis keys -----------------------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return f"{self.prefix}rw:" + ":".join(parts)

    def score(self, event_id: str) -> str:
        """The JSON score of one event (TTL ``score_ttl_s``)."""
        return f"{self.prefix}rw:score:{event_id}"  # as _key, inline: ~10 keys per event

    def feature_row(self, event_id: str) -> str:
        """The feature row kept for the label join (TTL ``label_horizon_s``)."""
        return f"{self.prefix}rw:row:{event_id}"

    def seen(self, event_id: str) -> str:
        """Marks an event whose counters were already applied (idempotent replays)."""
        return self._key("seen", event_id)

    def label_seen(self, event_id: str) -> str:
        """Marks an event whose label was already learned (duplicate labels are ignored)."""
        return self._key("labelseen", event_id)

    def entity(self, kind: str, entity_id: str) -> str:
        """The bucketed counters of one card or terminal (a hash of ``field:bucket``)."""
        return f"{self.prefix}rw:ent:{kind}:{entity_id}"

    def entity_days(self, kind: str, entity_id: str) -> str:
        """Day totals of one card or terminal's counters (stores.features), beside
        :meth:`entity`."""
        return f"{self.prefix}rw:entd:{kind}:{entity_id}"

    def model_snapshot(self, name: str) -> str:
        """The latest snapshot (bytes) of an online model."""
        return self._key("model", name, "snapshot")

    def model_version(self, name: str) -> str:
        """The version string of the latest snapshot of an online model."""
        return self._key("model", name, "version")

    def learner_stats(self) -> str:
        """Counters of the label join (learned, unknown, duplicate; parked: labels that waited
        for their transaction, each later counted learned, unknown or duplicate)."""
        return self._key("learner", "stats")

    def learner_early(self) -> str:
        """Hash of event_id -> a label that arrived before its transaction was scored, waiting
        for its feature row (streams/early.py: when it was parked, its origin, its record)."""
        return self._key("learner", "early")

    def learner_reset(self) -> str:
        """Hash of request_id -> JSON Control: resets of the online model awaiting the learner.

        The trainer (owner of ``control``) writes them; the learner (owner of ``labels``, the
        online model's single writer) answers and removes them. A hash, so a request delivered
        twice is answered once and two requests in a row are both answered.
        """
        return self._key("learner", "reset")

    def control(self, part: str) -> str:
        """The trainer's control requests: ``pending`` (hash request_id -> JSON: the request,
        ``waiting`` or ``running``, since when) and ``seen`` (sorted set request_id -> when its
        outcome was published; capped), so a request survives a restart and runs once."""
        return self._key("control", part)

    def workers(self) -> str:
        """Hash of worker id -> last heartbeat (epoch seconds)."""
        return self._key("workers")

    def helpers(self) -> str:
        """Hash of worker id -> last heartbeat, for workers without the scoring role."""
        return self._key("helpers")

    def worker_partitions(self) -> str:
        """Hash of scorer id -> the ``transactions`` partitions it owns ("0,2"), beside its beat."""
        return self._key("workers", "partitions")

    def api_keys(self) -> str:
        """Hash of sha256(key) -> JSON {name, scopes}."""
        return self._key("apikeys")

    def forecast_state(self, series_id: str) -> str:
        """Hash of one series' forecaster: ``state`` (pickle), ``version``, ``latest`` (JSON)."""
        return self._key("fc", "state", series_id)

    def forecast_observed(self, series_id: str) -> str:
        """List of one series' last applied points, JSON ``[epoch, value]``, oldest first."""
        return self._key("fc", "observed", series_id)

    def forecast_series(self) -> str:
        """Hash of series_id -> JSON summary (model, rolling error, coverage, as_of)."""
        return self._key("fc", "series")

    def derived(self, name: str) -> str:
        """Keys of the derived per-minute series: ``open`` (zset), ``meta``, ``m:<minute>``."""
        return self._key("derived", name)

    def live(self, second: int) -> str:
        """Scoring statistics of one wall-clock second (a hash; see streams.livestats)."""
        return self._key("live", str(second))

    def alert_stream(self) -> str:
        """The Redis stream of delivered alerts (GET /v1/alerts, SSE ids are its entry ids)."""
        return self._key("alerts")

    def alert_gate(self, part: str, ident: str) -> str:
        """Dedup (``seen``, by alert_id) and cooldown (``cool``, by kind:subject) markers."""
        return self._key("alert", part, ident)

    def subscriptions(self) -> str:
        """Hash of subscription id -> JSON (url, filters, secret, status)."""
        return self._key("subs")

    def subscription(self, sub_id: str, part: str) -> str:
        """Per-subscription keys: ``queue`` (stream of pending alerts), ``stats``, ``lease``."""
        return self._key("sub", sub_id, part)

    def registry(self, part: str) -> str:
        """Batch-model registry: ``versions`` (hash name -> JSON), ``stages`` (hash), ``seq``,
        ``token`` (bumped on every stage change; scorers poll it) and ``audit`` (a list)."""
        return self._key("registry", part)

    def monitor(self, part: str) -> str:
        """Monitor results: ``drift``/``fairness``/``performance``/``concept`` (latest JSON),
        ``<part>:history`` (lists, newest first) and ``actions`` (the policy's audit list)."""
        return self._key("monitor", part)

    def demo(self) -> str:
        """The demo's status (`up --demo`, shell.demo): its phase, steps and episode."""
        return self._key("demo", "status")
