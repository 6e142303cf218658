"""`riverwatch status`: one screen on the running system (rates, latency, models, lag, alerts)."""

from __future__ import annotations

import time
from typing import Any

import orjson
from confluent_kafka import TopicPartition

from riverwatch.context_parts import kafka_config, redis_config
from riverwatch.core.kafka import admin, consumer
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.runfiles import read_supervisor
from riverwatch.core.settings import Settings
from riverwatch.models.livestats import summarize


def consumer_lag(settings: Settings, topic: str, group: str) -> int | None:
    """Records not yet consumed by ``group`` on ``topic`` (approximate on the embedded broker,
    whose high watermark is unreliable); None when the broker does not answer."""
    try:
        meta = admin(kafka_config(settings)).list_topics(topic, timeout=5)
        parts = [TopicPartition(topic, p) for p in meta.topics[topic].partitions]
        c = consumer(kafka_config(settings), group)
        try:
            committed = c.committed(parts, timeout=5)
            lag = 0
            for tp in committed:
                _, high = c.get_watermark_offsets(tp, timeout=5)
                lag += max(0, high - max(tp.offset, 0))
            return lag
        finally:
            c.close()
    except Exception:  # status must print what it can; the broker may be down
        return None


def collect(settings: Settings, window_s: int = 60) -> dict[str, Any]:
    """The figures `status` prints, as a dict (also handy for scripts)."""
    names = Names(settings.topic_prefix)
    r = redis_client(redis_config(settings))
    now = int(time.time())
    p = r.pipeline(transaction=False)
    for sec in range(now - window_s + 1, now + 1):  # the current second included
        p.hgetall(names.live(sec))
    p.hgetall(names.workers())
    p.hgetall(names.helpers())
    p.hgetall(names.learner_stats())
    p.get(names.model_version("online"))
    p.get(names.monitor("status"))
    p.get(names.demo())
    *seconds, workers, helpers, learner, online, monitor, demo = p.execute()
    live = summarize(({k.decode(): float(v) for k, v in h.items()} for h in seconds), window_s)

    def alive(beats: dict[bytes, bytes]) -> int:
        return sum(now - float(t) < 3 * settings.worker_heartbeat_s for t in beats.values())

    return {
        "live": live,
        "workers": alive(workers),
        "helpers": alive(helpers),
        "learner": {k.decode(): int(float(v)) for k, v in learner.items()},
        "online_model": online.decode() if online else "0 (no labels learned yet)",
        "monitor": orjson.loads(monitor)["message"] if monitor else "no scored event seen yet",
        "demo": orjson.loads(demo) if demo else None,
        "children": read_supervisor(settings.data_dir),
        "lag": {
            "scorer": consumer_lag(
                settings,
                names.topic("transactions"),
                names.group(settings.consumer_group, "scorer"),
            ),
        },
    }


def render(s: dict[str, Any]) -> str:
    """The status screen as text."""
    live, lat = s["live"], s["live"]["latency_ms"]
    d = live["decisions"]
    lines = [
        f"workers alive      {s['workers']} scoring, {s['helpers']} helper",
        f"scored (last 60 s) {live['scored']:,.0f}  ({live['scored_per_s']:,.1f}/s)",
        f"latency            p50 <= {lat['p50']} ms, p99 <= {lat['p99']} ms",
        f"decisions          approve {d['approve']:,.0f}  review {d['review']:,.0f}  "
        f"decline {d['decline']:,.0f}",
        f"fraud alert rate   {live['fraud_alert_rate']:.2%}",
        f"online model       version {s['online_model']}",
        f"monitor            {s.get('monitor', '?')}",
        "labels             " + ", ".join(f"{k} {v:,}" for k, v in sorted(s["learner"].items())),
        "scorer lag         "
        + (
            f"{s['lag']['scorer']:,} records (approximate on the embedded broker)"
            if s["lag"]["scorer"] is not None
            else "unknown (the broker did not answer)"
        ),
    ]
    demo = s.get("demo")
    if demo:  # `up --demo`: its phase, and the drift episode once injected
        lines.append(f"demo               {demo['message']}")
        ep = demo.get("episode")
        if ep and demo["phase"] != "drift injected":  # that phase's message says it already
            lines.append(
                f"drift episode      injected at {ep['injected_at'][11:19]} UTC, since event "
                f"day {ep['event_day']}: {ep['description']}"
            )
    children = s.get("children")
    if children:  # run by `riverwatch up`: how its supervised children are doing
        lines.append("children           " + ", ".join(_child(n, c) for n, c in children.items()))
    return "\n".join(lines)


def _child(name: str, c: dict[str, Any]) -> str:
    """One supervised child as ``name state`` (+ restarts, crash-looping)."""
    text = f"{name} {c.get('state', '?')}"
    if c.get("restarts"):
        text += f" ({c['restarts']} restarts)"
    if c.get("crash_looping"):
        text += " CRASH-LOOPING"
    return text
