"""Model artifacts: a model plus its metadata as bytes, named by their sha256.

A pickled scikit-learn model is only safe to load with the library versions that wrote it,
so an artifact records them and :func:`load_artifact` refuses a mismatch before it unpickles
the model. The bytes are a pickle of ``{"format", "header", "model"}`` where ``header`` is
JSON (metadata and versions) and ``model`` the pickled model, so the checks need nothing but
the standard library to run.

>>> blob, sha = dump_artifact({"w": [1, 2]}, {"features": ["amount"]})
>>> model, meta = load_artifact(blob, sha)
>>> model, meta["features"], meta["versions"]["numpy"] == np.__version__
({'w': [1, 2]}, ['amount'], True)
>>> try:
...     load_artifact(blob, "0" * 64)
... except ModelError as exc:
...     print(str(exc)[:40])
artifact sha256 mismatch: expected 00000
"""

from __future__ import annotations

import hashlib
import pickle
import platform
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

import numpy as np
import orjson

from riverwatch.core import unpickle
from riverwatch.core.errors import ModelError

FORMAT = "riverwatch-model/1"
Stage = Literal["champion", "challenger", "archived"]
# Pickles of these break across versions; river only matters for models that contain it.
REQUIRED = ("python", "numpy", "scikit-learn")


def _installed(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


@cache
def library_versions() -> dict[str, str]:
    """The versions this process runs: python (major.minor), numpy, scikit-learn, river.

    Read from package metadata: importing river only to ask its version costs seconds.
    """
    major, minor, _ = platform.python_version_tuple()
    return {
        "python": f"{major}.{minor}",
        "numpy": np.__version__,
        "scikit-learn": _installed("scikit-learn"),
        "river": _installed("river"),
    }


def sha256(blob: bytes) -> str:
    """Hex sha256 of ``blob``."""
    return hashlib.sha256(blob).hexdigest()


def dump_artifact(
    model: Any, meta: Mapping[str, Any], requires: Iterable[str] | None = None
) -> tuple[bytes, str]:
    """Serialize ``model`` with ``meta`` (JSON-able) and the library versions; -> (bytes, sha256).

    The stored metadata gains ``versions`` (:func:`library_versions`) and ``requires``: the
    libraries whose versions must match at load time (default :data:`REQUIRED`, plus river
    when the model is a River object).
    """
    if requires is None:
        river_model = type(model).__module__.split(".")[0] == "river"
        requires = [*REQUIRED, "river"] if river_model else REQUIRED
    header = {**meta, "versions": dict(library_versions()), "requires": list(requires)}
    body = {
        "format": FORMAT,
        "header": orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY),
        "model": pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL),
    }
    blob = pickle.dumps(body, protocol=pickle.HIGHEST_PROTOCOL)
    return blob, sha256(blob)


def read_header(blob: bytes) -> dict[str, Any]:
    """The metadata of an artifact without loading its model (no version check)."""
    try:
        body = unpickle.loads(blob)
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} artifact")
        header = orjson.loads(body["header"])
    except Exception as exc:
        raise ModelError(f"the model artifact is unreadable: {exc}") from exc
    return {**header, "_model": body["model"]}


def version_mismatches(
    recorded: Mapping[str, str], required: Iterable[str], running: Mapping[str, str] | None = None
) -> list[str]:
    """``"lib recorded -> running"`` for each required library whose version differs.

    >>> version_mismatches({"numpy": "1.0"}, ["numpy"], {"numpy": "2.0"})
    ['numpy 1.0 (artifact) vs 2.0 (this process)']
    """
    running = running or library_versions()
    return [
        f"{lib} {recorded.get(lib)} (artifact) vs {running.get(lib)} (this process)"
        for lib in required
        if recorded.get(lib) != running.get(lib)
    ]


def load_artifact(blob: bytes, expected_sha256: str) -> tuple[Any, dict[str, Any]]:
    """Load an artifact; -> (model, metadata). Raises ModelError, naming what is wrong.

    Refuses bytes whose sha256 differs from ``expected_sha256`` (corrupt or replaced file) and
    artifacts written with other versions of the libraries in ``meta["requires"]`` (retrain
    the model with this environment, or run the versions the message names).
    """
    actual = sha256(blob)
    if actual != expected_sha256:
        raise ModelError(
            f"artifact sha256 mismatch: expected {expected_sha256}, the bytes hash to {actual} "
            "(the file is corrupt or was replaced); retrain or restore the artifact"
        )
    header = read_header(blob)
    model_bytes = header.pop("_model")
    wrong = version_mismatches(header.get("versions", {}), header.get("requires", REQUIRED))
    if wrong:
        raise ModelError(
            "model artifact was written with other library versions: "
            + "; ".join(wrong)
            + ". Retrain it here (`riverwatch train`) or install the versions it names"
        )
    try:
        model = unpickle.loads(model_bytes)
    except Exception as exc:
        raise ModelError(f"the model in the artifact cannot be loaded: {exc}") from exc
    return model, header


@dataclass(frozen=True)
class ModelVersion:
    """One registered model: where its artifact is, what it was trained and judged on."""

    name: str
    sha256: str
    created: str
    data_start: float
    data_end: float
    holdout_start: float
    holdout_end: float
    metrics: dict[str, float | None]
    features: tuple[str, ...]
    versions: dict[str, str]
    stage: Stage = "challenger"
    previous: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (features as a list)."""
        out = asdict(self)
        out["features"] = list(self.features)
        return out

    @classmethod
    def from_record(cls, rec: dict[str, Any], stages: dict[str, str]) -> ModelVersion:
        """Build from a stored record, with the stage the stages hash gives it."""
        stage = next((s for s in ("champion", "challenger") if stages.get(s) == rec["name"]), None)
        fields = {k: v for k, v in rec.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "features": tuple(rec["features"]), "stage": stage or "archived"})
