"""The demo's story (shell.demo): its phase, advanced by what the system does.

Phases, in order: warming up, calm, drift injected, drift alert, retrain, recovered. After the
injection each step is a fact read from Redis (the alert stream, the monitor's actions and
status, the registry); the phase moves through them in order, each step with the time the
demo saw it. The status is kept under ``Names.demo`` (GET /v1/demo, the dashboard's banner,
`riverwatch status`).
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from riverwatch.context_parts import kafka_config
from riverwatch.core.events import dumps, now_utc
from riverwatch.core.kafka import producer
from riverwatch.core.names import Names
from riverwatch.core.outputs import Control
from riverwatch.core.settings import Settings
from riverwatch.stores.registry import Registry

log = logging.getLogger(__name__)
DAY = 86_400.0
PHASES = ("warming up", "calm", "drift injected", "drift alert", "retrain", "recovered")
RETRAIN_AGAIN_S = 90.0  # the first retrain asked again when no champion came of it


def clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S UTC")


def _iso_epoch(text: str | None) -> float:
    return datetime.fromisoformat(text).timestamp() if text else float("-inf")


class Story:
    """The demo's phase, advanced by what the system does; published to Redis."""

    def __init__(self, settings: Settings, r: redis.Redis, start: float) -> None:
        self.s, self.r, self.start = settings, r, start
        self.names = Names(settings.topic_prefix)
        self.registry = Registry(r, self.names, settings.data_dir)
        self.phase = PHASES[0]
        self.message = "warming up: starting the demo traffic"
        self.steps: list[dict[str, Any]] = []
        self.episode: dict[str, Any] | None = None
        self.backfill: dict[str, Any] | None = None
        self.event_day = 0
        self.due: float | None = None  # wall time the episode is injected at
        self.calm_champion: str | None = None
        self.drift_start = float("inf")  # event time the episode starts at
        self.alert_cursor = "0-0"
        self.retrain_asked = 0.0
        self.seen: dict[str, str] = {}  # facts after the injection: phase -> message

    # -- publishing --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "message": self.message,
            "event_day": self.event_day,
            "updated": now_utc().isoformat(),
            "backfill": self.backfill,
            "drift_due": datetime.fromtimestamp(self.due, UTC).isoformat() if self.due else None,
            "episode": self.episode,
            "steps": self.steps,
        }

    def publish(self) -> None:
        self.r.set(self.names.demo(), orjson.dumps(self.to_dict()))

    def enter(self, phase: str, message: str) -> None:
        self.phase, self.message = phase, message
        self.steps.append({"phase": phase, "at": now_utc().isoformat(), "message": message})
        log.info("demo: %s", message)
        self.publish()

    def say(self, message: str) -> None:
        if message != self.message:
            self.message = message
            log.debug("demo: %s", message)
        self.publish()

    # -- warming up --------------------------------------------------------------------------
    def backfilling(self, day: int, of: int, rate: float, waiting: str = "") -> None:
        self.event_day = day
        self.backfill = {"day": day, "of": of}
        self.say(
            f"warming up: backfilling event day {day} of {of} as fast as the system takes "
            f"it ({rate:,.0f} events/s){waiting}"
        )

    def ask_retrain(self) -> None:
        """The first retrain, on ``control`` (the trainer answers there)."""
        req = Control(
            action="retrain",
            target="batch",
            request_id=f"demo-first-{uuid.uuid4().hex[:8]}",
            reason="demo: first batch model, the features being full",
            timestamp=now_utc(),
        )
        p = producer(kafka_config(self.s), **{"message.timeout.ms": 10_000})
        p.produce(self.names.topic("control"), dumps(req), req.request_id.encode())
        p.flush(10)
        self.retrain_asked = time.monotonic()

    def first_champion(self) -> None:
        """Ask for the first retrain and wait for its champion (asking again now and then:
        a request lost with a restarted worker, or one that found too few labels)."""
        while (champ := self.registry.champion()) is None:
            if time.monotonic() - self.retrain_asked > RETRAIN_AGAIN_S:
                self.ask_retrain()
            self.say(
                f"warming up: features full at event day {self.event_day}, first retrain "
                "requested (the backfill waits for the champion)"
            )
            time.sleep(1.0)
        self.say(f"warming up: champion {champ.name}; backfilling the monitor's reference week")

    # -- observing ---------------------------------------------------------------------------
    def observe(self, t: float) -> bool:
        """One look at the system at event time ``t``; True when the episode is due now."""
        self.event_day = int((t - self.start) // DAY)
        before = self.phase
        if self.phase == "warming up":
            self._warming_up()
        elif self.phase == "calm":
            if time.time() >= (self.due or 0):
                return True
            self.say(self._calm_text())
        else:
            self._episode()
        if self.phase == before:
            self.publish()  # the event day moves on
        return False

    def _monitor(self) -> dict[str, Any]:
        raw = self.r.get(self.names.monitor("status"))
        return orjson.loads(raw) if raw else {"state": "no data yet", "message": "no data yet"}

    def _warming_up(self) -> None:
        champ = self.registry.champion()
        online = int(self.r.get(self.names.model_version("online")) or 0)
        mon = self._monitor()
        if champ is None:
            if time.monotonic() - self.retrain_asked > RETRAIN_AGAIN_S:
                self.ask_retrain()
            self.say(f"warming up: first retrain requested (event day {self.event_day})")
        elif mon.get("state") != "ready" or online == 0:
            self.say(f"warming up: champion {champ.name}; monitor {mon.get('message')}")
        else:
            self.calm_champion = champ.name
            self.due = time.time() + self.s.demo_drift_after_s
            self.enter("calm", self._calm_text())

    def _calm_text(self) -> str:
        online = int(self.r.get(self.names.model_version("online")) or 0)
        return (
            f"calm: champion {self.calm_champion}, online model v{online}, monitor ready; "
            f"drift episode due at {clock(self.due or 0)}"
        )

    def inject(self, first_day: int, description: str) -> None:
        self.drift_start = self.start + first_day * DAY
        at = time.time()
        self.episode = {
            "injected_at": datetime.fromtimestamp(at, UTC).isoformat(),
            "event_day": first_day,
            "description": description,
        }
        self.alert_cursor = f"{int(at * 1000)}-0"
        self.enter(
            "drift injected",
            f"drift episode injected at {clock(at)}, since event day {first_day}: {description}",
        )

    def _episode(self) -> None:
        """Collect what the system did after the injection; advance through it in order."""
        if "drift alert" not in self.seen and (a := self._drift_alert()):
            self.seen["drift alert"] = f"drift alert at {clock(time.time())}: {a['message']}"
        if "retrain" not in self.seen and (act := self._retrain_request()):
            self.seen["retrain"] = (
                f"retrain requested by the monitor ({act['request_id']}): {act['reason']}"
            )
        if "recovered" not in self.seen and (done := self._recovered()):
            self.seen["recovered"] = done
        for phase in PHASES[PHASES.index(self.phase) + 1 :]:
            if phase not in self.seen:
                break
            self.enter(phase, self.seen[phase])

    def _drift_alert(self) -> dict[str, Any] | None:
        raw: Any = self.r.xrange(self.names.alert_stream(), f"({self.alert_cursor}", "+", 1000)
        for eid, fields in raw:
            self.alert_cursor = eid.decode() if isinstance(eid, bytes) else str(eid)
            alert = orjson.loads(fields[b"alert"])
            start = _iso_epoch((alert.get("details") or {}).get("window_start"))
            if alert.get("kind") == "drift" and start >= self.drift_start:
                return alert  # type: ignore[no-any-return]
        return None

    def _retrain_request(self) -> dict[str, Any] | None:
        for raw in self.r.lrange(self.names.monitor("actions"), 0, 50):
            act = orjson.loads(raw)
            ends = _iso_epoch(act.get("window_end"))
            if act.get("action") == "retrain" and ends > self.drift_start:
                return act  # type: ignore[no-any-return]
        return None

    def _recovered(self) -> str | None:
        champ = self.registry.champion()
        if champ is None or champ.name == self.calm_champion:
            return None
        if champ.holdout_end <= self.drift_start:
            return None  # promoted without the episode's labels: not a recovery from it
        source = self._monitor().get("source")
        if source != f"champion {champ.name}":
            return None
        last = int((champ.holdout_end - self.start) // DAY)
        return (
            f"recovered at {clock(time.time())}: champion {champ.name} promoted (hold-out "
            f"through event day {last}, the episode's days included); the monitor judges "
            "against its reference"
        )
