"""The models a scorer serves (online learner, batch champion, shadow challenger), hot-reloaded.

Pure of I/O libraries: the snapshot store and the registry are passed in (anything with their
methods), so the stream worker and the API share this code.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from riverwatch.core.errors import ModelError
from riverwatch.models import online
from riverwatch.models.features import FEATURE_NAMES

log = logging.getLogger(__name__)
ONLINE = "online"


class Snapshots(Protocol):
    """What the model set needs from the online-snapshot store."""

    def version(self, name: str) -> str | None: ...
    def load(self, name: str) -> tuple[bytes, str] | None: ...


class Versions(Protocol):
    """What the model set needs from the batch-model registry."""

    def stage_token(self) -> str: ...
    def champion(self) -> Any: ...
    def challenger(self) -> Any: ...
    def load(self, name: str) -> tuple[Any, Any]: ...


@dataclass(frozen=True)
class BatchModel:
    """A loaded batch model and the feature names it was trained on."""

    name: str
    estimator: Any
    features: tuple[str, ...]
    blend_weight: float | None = None  # fitted on its hold-out (models.training.blend_weight)


@dataclass
class Models:
    """One consistent set of models to score a batch with."""

    online: Any
    online_version: str = "0"
    champion: BatchModel | None = None
    challenger: BatchModel | None = None

    def versions(self) -> dict[str, str]:
        """Model versions for the score record."""
        out = {ONLINE: self.online_version}
        if self.champion is not None:
            out["batch"] = self.champion.name
        if self.challenger is not None:
            out["challenger"] = self.challenger.name
        return out


@dataclass
class ModelSet:
    """Reloads the online snapshot and the champion/challenger when they change.

    ``current()`` checks at most every ``reload_s`` seconds (two cheap GETs); a model that
    fails to load is logged and the previous one kept, so scoring never stops on a bad artifact.
    ``features`` are the scorer's columns: a batch model trained on a column the scorer does
    not compute (an attribute since dropped from RIVERWATCH_FEATURE_ATTRIBUTES) is refused,
    with an error in the log, and scoring goes on without it.
    """

    snapshots: Snapshots
    registry: Versions | None
    reload_s: float = 1.0
    features: tuple[str, ...] = FEATURE_NAMES
    models: Models = field(default_factory=lambda: Models(online.make_model()))
    _token: str | None = None
    _checked: float = float("-inf")

    def current(self) -> Models:
        """The models to score with now."""
        now = time.monotonic()
        if now - self._checked >= self.reload_s:
            # marked checked only once the check went through: a check that raised (Redis
            # down) must not hold the next one off for reload_s, or the batch retried after
            # Redis came back was scored with the model from before
            self._reload_online()
            self._reload_batch()
            self._checked = now
        return self.models

    def _reload_online(self) -> None:
        version = self.snapshots.version(ONLINE)
        if version in (None, self.models.online_version):
            return
        got = self.snapshots.load(ONLINE)
        if got is None:
            return
        try:
            model, _ = online.load_snapshot(got[0])
        except ModelError:
            log.exception(
                "keeping online model %s: snapshot %s cannot be loaded",
                self.models.online_version,
                got[1],
            )
            return
        self.models = Models(model, got[1], self.models.champion, self.models.challenger)
        log.info("online model reloaded: version %s", got[1])

    def _reload_batch(self) -> None:
        if self.registry is None:
            return
        token = self.registry.stage_token()
        if token == self._token:
            return
        champion = self._load(self.registry.champion())
        challenger = self._load(self.registry.challenger())
        self.models = Models(self.models.online, self.models.online_version, champion, challenger)
        self._token = token
        log.info(
            "batch models reloaded: champion %s, challenger %s",
            champion and champion.name,
            challenger and challenger.name,
        )

    def _load(self, version: Any) -> BatchModel | None:
        if version is None:
            return None
        try:
            estimator, meta = self.registry.load(version.name)  # type: ignore[union-attr]
        except ModelError:
            log.exception("cannot load batch model %s; scoring without it", version.name)
            return None
        features = tuple(meta.features)
        if missing := [f for f in features if f not in self.features]:
            log.error(
                "batch model %s was trained on features this scorer does not compute (%s; "
                "check RIVERWATCH_FEATURE_ATTRIBUTES or retrain); scoring without it",
                version.name,
                ", ".join(missing),
            )
            return None
        if unused := [f for f in self.features if f not in features]:
            log.info(
                "batch model %s does not use %s (trained before they existed; the next retrain "
                "will)",
                version.name,
                ", ".join(unused),
            )
        blend = (getattr(meta, "info", None) or {}).get("blend_weight")
        return BatchModel(version.name, estimator, features, blend)
