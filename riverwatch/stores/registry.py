"""The batch-model registry: versions with their metrics, stages, and an audit trail.

Metadata lives in Redis (``stores/registry_meta.py``: hashes of versions and stages, a
sequence, a stage token and an audit list, under ``Names.registry``), artifacts in
``<data_dir>/models/<name>.pkl``. A version's stage is derived from the stages hash
(champion, challenger, else archived). Each stage change is one optimistic transaction
(WATCH/MULTI), so the API and the trainer may promote concurrently, and bumps
:meth:`Registry.stage_token`, which scorers poll.

>>> import tempfile
>>> from riverwatch.stores.registry_meta import MemoryMeta
>>> reg = Registry(MemoryMeta(), Names("doc-"), Path(tempfile.mkdtemp()))
>>> v = reg.register({"w": 1}, data_window=(0, 10), holdout_window=(10, 20),
...                  metrics={"auc": 0.9, "ap": 0.5}, features=("amount",))
>>> v.name, v.stage, reg.champion()
('batch-1', 'challenger', None)
>>> reg.promote("batch-1").stage, reg.challenger()
('champion', None)
>>> reg.load("batch-1")[0], [e["action"] for e in reg.audit()]
({'w': 1}, ['register', 'promote'])
"""

from __future__ import annotations

import builtins
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from riverwatch.core.artifacts import ModelVersion, dump_artifact, library_versions, load_artifact
from riverwatch.core.errors import ModelError, RiverwatchError
from riverwatch.core.names import Names
from riverwatch.stores.registry_meta import Change, MetaStore, Records, RedisMeta


class UnknownModel(RiverwatchError, LookupError):
    """No version of that name is registered."""


class StageConflict(RiverwatchError):
    """The stage change makes no sense now (already champion, nothing to roll back to)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _clean(metrics: dict[str, Any]) -> dict[str, float | None]:
    # NaN (an undefined metric) is not JSON; store it as null.
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in metrics.items()}


def _entry(action: str, name: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"action": action, "name": name, "reason": reason, "at": _now(), **extra}


def _crown(stages: dict[str, str], name: str) -> dict[str, str]:
    # ``name`` leaves the stage it held: a promoted challenger is no longer the challenger.
    return {**{k: v for k, v in stages.items() if v != name}, "champion": name}


def _write(path: Path, blob: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(blob)
        os.replace(tmp, path)  # a loader never sees half an artifact
    finally:
        tmp.unlink(missing_ok=True)


class Registry:
    """Register, load, promote and roll back batch models.

    ``client`` is a Redis client (production) or a :class:`MetaStore` such as
    :class:`MemoryMeta`. Every process that loads models needs the same ``data_dir``.
    """

    def __init__(self, client: redis.Redis | MetaStore, names: Names, data_dir: Path):
        self.meta: MetaStore = (
            RedisMeta(client, names) if isinstance(client, redis.Redis) else client
        )
        self.dir = Path(data_dir) / "models"

    def stage_token(self) -> str:
        """Changes whenever a stage changes (register, promote, rollback); one Redis GET."""
        return self.meta.token()

    def register(
        self,
        model: Any,
        *,
        data_window: tuple[float, float],
        holdout_window: tuple[float, float],
        metrics: dict[str, Any],
        features: tuple[str, ...] | builtins.list[str],
        info: dict[str, Any] | None = None,
        reason: str = "",
    ) -> ModelVersion:
        """Store ``model`` as the new challenger (the previous challenger is archived)."""
        name = f"batch-{self.meta.next_seq()}"
        blob, sha = dump_artifact(model, {"name": name, "features": list(features)})
        _write(self.dir / f"{name}.pkl", blob)
        rec = ModelVersion(
            name, sha, _now(), float(data_window[0]), float(data_window[1]),
            float(holdout_window[0]), float(holdout_window[1]), _clean(metrics),
            tuple(features), dict(library_versions()), info=info or {},
        ).to_dict()  # fmt: skip
        del rec["stage"]  # derived from the stages hash on every read

        def fn(stages: dict[str, str], records: Records) -> Change:
            audit = _entry("register", name, reason, replaced=stages.get("challenger"))
            return Change({**stages, "challenger": name}, {name: rec}, audit)

        try:
            self.meta.transact(fn)
        except BaseException:  # e.g. a fenced writer's lease ran out: no orphan artifact
            (self.dir / f"{name}.pkl").unlink(missing_ok=True)
            raise
        return self.get(name)

    def get(self, name: str) -> ModelVersion:
        """The version called ``name``; raises UnknownModel."""
        stages, records = self.meta.read()
        if name not in records:
            raise UnknownModel(f"no model version named {name!r}")
        return ModelVersion.from_record(records[name], stages)

    def champion(self) -> ModelVersion | None:
        """The version scorers use, or None."""
        return next((v for v in self.list() if v.stage == "champion"), None)

    def challenger(self) -> ModelVersion | None:
        """The version scored in the shadow, or None."""
        return next((v for v in self.list() if v.stage == "challenger"), None)

    def artifact(self, name: str) -> Path:
        """Where ``name``'s artifact lies (its sha256 is in its :class:`ModelVersion`)."""
        return self.dir / f"{name}.pkl"

    def load(self, name: str) -> tuple[Any, ModelVersion]:
        """(model, version) of ``name``; ModelError: artifact missing, corrupt, other libraries."""
        version = self.get(name)
        path = self.artifact(name)
        try:
            blob = path.read_bytes()
        except FileNotFoundError as exc:
            raise ModelError(f"the artifact of {name} is missing at {path}") from exc
        model, _ = load_artifact(blob, version.sha256)
        return model, version

    def promote(self, name: str, reason: str = "") -> ModelVersion:
        """Make ``name`` the champion; the old one is archived and remembered as previous.

        Raises UnknownModel, or StageConflict when ``name`` already is the champion.
        """

        def fn(stages: dict[str, str], records: Records) -> Change:
            if name not in records:
                raise UnknownModel(f"no model version named {name!r}")
            old = stages.get("champion")
            if old == name:
                raise StageConflict(f"{name} is already the champion")
            audit = _entry("promote", name, reason, previous=old)
            return Change(_crown(stages, name), {name: {**records[name], "previous": old}}, audit)

        self.meta.transact(fn)
        return self.get(name)

    def rollback(self, reason: str = "") -> ModelVersion:
        """Make the champion's previous champion the champion again; the current is archived.

        Raises StageConflict when there is no champion or it has no previous one.
        """

        def fn(stages: dict[str, str], records: Records) -> Change:
            current = stages.get("champion")
            if current is None:
                raise StageConflict("there is no champion to roll back")
            prev = records[current].get("previous")
            if not prev or prev not in records:
                raise StageConflict(f"the champion {current} has no previous champion")
            entry = _entry("rollback", prev, reason, previous=current)
            return Change(_crown(stages, prev), {}, entry)

        change = self.meta.transact(fn)
        return self.get(change.audit["name"])

    def audit(self, n: int = 50) -> builtins.list[dict[str, Any]]:
        """The last ``n`` audit entries, oldest first: {action, name, reason, at, ...}."""
        return self.meta.audit(n)

    def list(self) -> builtins.list[ModelVersion]:
        """Every version, newest first."""
        stages, records = self.meta.read()
        versions = [ModelVersion.from_record(r, stages) for r in records.values()]
        return sorted(versions, key=lambda v: v.created, reverse=True)
