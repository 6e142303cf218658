"""Snapshots of what the monitor core holds in memory only, so that a restarted monitor goes
on where it stopped (``streams.monitor.snapshot`` writes them to Redis every few seconds).

Two parts, each one blob, since two agents own them (with several monitors, the one that owns
the ``labels`` partition has the label state, each has the score windows of its partitions):

* ``scores``: the open count and time windows (their rows or row samples, exact tallies and
  random state), the warm-up's reference rows being collected (a reservoir, its count and
  random state), the reference once set (per-feature, score and volume references and the
  reference scores' estimate) and a score reference collected after a reset;
* ``labels``: the concept-drift detectors (River's, per model and group, with their windows,
  held rises and the group tallies; ``ConceptDriftMonitor.state``), the open window of
  labeled events and the label-shift tallies (:mod:`monitors.labelshift`).

Restored, the core decides on the following stream as if it had never stopped
(``tests/unit/monitors/test_monitor_snapshot.py``). A blob is ``RWMS``, the format number
(:data:`SNAPSHOT_VERSION`) and the zlib-compressed pickle of the part's objects (the rows as
read, a time window's as MessagePack bytes, River detectors and numpy arrays as they pickle:
shared rows are written once). It is bounded by the configuration: ``window_rows`` per open
time window, ``window_size``, ``label_window`` and ``reference_rows`` rows, ``max_groups``
detectors per model.

A snapshot is not used, and :class:`SnapshotError` says why, when it is not one, is of another
format, was written by other code of the pickled classes (:func:`code_fingerprint`: an upgrade
that touches them starts those parts afresh, as a monitor without snapshots did) or under
another configuration of what it holds (a window width, the features, the detector).
Unpickling trusts what Redis holds, as the online model's snapshots do.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import river

from riverwatch.monitors.core.state import MonitorState

SNAPSHOT_VERSION = 1
MAGIC = b"RWMS"
PARTS = ("scores", "labels")
_ATTRS = {
    "scores": (
        "as_of", "first", "ref_from", "ref_until", "_ref_rows", "_rng", "_seen",
        "_scores_until", "_ref_scores", "features", "scores_ref", "volume", "ref_info",
        "weights", "ref_estimate", "windows",
    ),
    "labels": ("as_of", "labeled", "label_rates"),
}  # fmt: skip
# the modules whose objects a snapshot pickles (or whose attributes it sets)
_CODE = (
    "riverwatch.monitors.windows", "riverwatch.monitors.columns",
    "riverwatch.monitors.prediction", "riverwatch.monitors.quality", "riverwatch.monitors.cbpe",
    "riverwatch.monitors.concept", "riverwatch.monitors.concept.detectors",
    "riverwatch.monitors.core.state", "riverwatch.monitors.core.snapshot",
    "riverwatch.monitors.core.config",
    "riverwatch.monitors.labelshift",
)  # fmt: skip


class _Deflate:
    """A file for ``pickle.Pickler`` that compresses each frame as it is written (zlib, level
    1): a full day's time window pickles to ~21 MB, which ``zlib.compress(pickle.dumps(..))``
    held whole beside its ~3 MB compressed copy every few seconds, the helper's RSS peaks
    (README, issue 15, session 29); this holds the compressed bytes only. The same zlib stream
    as ``zlib.compress`` makes, so :meth:`Snapshots.restore_snapshot` reads either."""

    def __init__(self, head: bytes):
        self._z = zlib.compressobj(1)
        self._parts = [head]

    def write(self, data: bytes) -> int:
        """Compress ``data`` (a pickle frame, or a large object's bytes)."""
        if chunk := self._z.compress(data):
            self._parts.append(chunk)
        return len(data)

    def blob(self) -> bytes:
        """The head and the whole compressed stream."""
        self._parts.append(self._z.flush())
        return b"".join(self._parts)


class SnapshotError(ValueError):
    """A snapshot that is not used (the message says why)."""


@functools.cache
def code_fingerprint() -> str:
    """A digest of the snapshot format, River's and numpy's versions and the source of the
    modules whose objects are pickled."""
    h = hashlib.sha256(f"{SNAPSHOT_VERSION}|{river.__version__}|{np.__version__}".encode())
    for name in _CODE:
        spec = importlib.util.find_spec(name)
        try:
            h.update(Path(spec.origin or "").read_bytes() if spec else name.encode())
        except OSError:  # no source (a frozen build): the module's name only
            h.update(name.encode())
    return h.hexdigest()[:16]


class Snapshots(MonitorState):
    """Snapshot and restore the core's in-memory parts (see the module)."""

    def snapshot(self, part: str, extra: dict[str, Any] | None = None) -> bytes:
        """The blob of ``part`` (``scores`` or ``labels``), with ``extra`` (the caller's own
        small state, picklable) to be handed back by :meth:`restore_snapshot`."""
        state = {k: getattr(self, k) for k in _ATTRS[part]}
        if part == "labels":
            state["concept"] = self.concept.state()
        doc = {
            "part": part,
            "code": code_fingerprint(),
            "config": self._config_key(part),
            "state": state,
            "extra": extra or {},
        }
        out = _Deflate(MAGIC + bytes([SNAPSHOT_VERSION]))
        pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(doc)
        return out.blob()

    def restore_snapshot(self, part: str, blob: bytes) -> dict[str, Any]:
        """Go on from a :meth:`snapshot` of ``part``; its ``extra``. Raises
        :class:`SnapshotError`, changing nothing, when it is not used (see the module)."""
        if blob[: len(MAGIC)] != MAGIC or len(blob) <= len(MAGIC):
            raise SnapshotError("not a monitor snapshot")
        if (version := blob[len(MAGIC)]) != SNAPSHOT_VERSION:
            raise SnapshotError(f"format {version}, this monitor reads {SNAPSHOT_VERSION}")
        try:
            doc = pickle.loads(zlib.decompress(memoryview(blob)[len(MAGIC) + 1 :]))
        except Exception as exc:  # whatever a damaged pickle raises: not used, never fatal
            raise SnapshotError(f"unreadable ({type(exc).__name__}: {exc})") from exc
        if not isinstance(doc, dict) or doc.get("part") != part:
            raise SnapshotError(f"not a snapshot of {part}")
        if doc.get("code") != code_fingerprint():
            raise SnapshotError("written by other code of the monitor (an upgrade)")
        if doc.get("config") != self._config_key(part):
            raise SnapshotError("written under another configuration")
        state = doc.get("state")
        want = {*_ATTRS[part], *(("concept",) if part == "labels" else ())}
        if not isinstance(state, dict) or set(state) != want:
            raise SnapshotError("incomplete")
        if part == "labels":
            try:
                self.concept.restore(state.pop("concept"))
            except ValueError as exc:
                raise SnapshotError(str(exc)) from exc
        as_of = max(self.as_of, state.pop("as_of"))  # the later of both parts
        for k, v in state.items():
            setattr(self, k, v)
        self.as_of = as_of
        return dict(doc.get("extra") or {})

    def _config_key(self, part: str) -> str:
        """What a part's state depends on in the configuration."""
        c = self.c
        if part == "labels":
            return repr((
                c.label_window, c.review_threshold, c.window_s, c.label_delay_s,
                self.concept.settings_key(),
            ))  # fmt: skip
        return repr((
            c.features, c.drift_columns, c.window_s, c.window_size, c.window_rows, c.warmup_s,
            c.reference_s, c.reference_rows, c.min_reference_rows, c.review_threshold,
            c.drift_alpha, c.drift_min_psi, c.segment_min_rows, c.perf_confidence,
        ))  # fmt: skip
