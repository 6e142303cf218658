"""Snapshots of the monitor core (monitors.core.snapshot, streams.monitor.snapshot): a core
restored from one decides on the following stream as the core that never stopped; a snapshot
that cannot be used is ignored, changing nothing; snapshots are written when due, not per batch."""

from __future__ import annotations

import math
import pickle
import zlib
from types import SimpleNamespace
from typing import Any

import msgspec
import numpy as np
import orjson
import pytest

from riverwatch.core.names import Names
from riverwatch.models.features import FEATURE_INDEX, FEATURE_NAMES
from riverwatch.monitors.concept import ConceptDriftMonitor
from riverwatch.monitors.core import MonitorCore
from riverwatch.monitors.core import snapshot as snapshot_mod
from riverwatch.monitors.core.config import CoreConfig, RowCodec
from riverwatch.monitors.core.snapshot import MAGIC, SNAPSHOT_VERSION, SnapshotError
from riverwatch.monitors.lazy import Unpacked
from riverwatch.monitors.policy.config import PolicyConfig
from riverwatch.monitors.policy.decision import Decision
from riverwatch.monitors.windows import TimeWindows
from riverwatch.streams.monitor.persist import Persisted
from riverwatch.streams.monitor.snapshot import Snapshots

DAY = 86_400.0
REGIONS = ("north", "south", "east", "west")
PER_DAY = 500


def day_rows(d: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """One event day of scored rows: amounts double from day 9 on."""
    rows = []
    for i in range(PER_DAY):
        region = REGIONS[int(rng.integers(4))]
        x = rng.lognormal(0, 0.5, len(FEATURE_NAMES))
        x[FEATURE_INDEX["card_n_30d"]] = rng.poisson(3)
        if d >= 9:
            x[FEATURE_INDEX["amount"]] *= 2.0
        score = float(rng.beta(1, 12))
        rows.append({
            "x": x.tolist(), "score": score, "online_score": float(rng.beta(1, 12)),
            "decision": "review" if score >= 0.3 else "approve", "groups": {"region": region},
            "epoch": (d + (i + 0.5) / PER_DAY) * DAY, "card_id": f"c{int(rng.integers(300))}",
        })  # fmt: skip
    return rows


def day_labels(rows: list[dict[str, Any]], d: int, rng: np.random.Generator) -> list[Any]:
    """Labels of a day's rows, given a day later; the models err far more from day 8 on."""
    err = 0.05 if d < 8 else 0.4
    out = []
    for r in rows:
        flagged = r["decision"] != "approve"
        label = int(flagged) if rng.random() >= err else int(not flagged)
        out.append((r, label, r["epoch"] + DAY))
    return out


def make_core() -> MonitorCore:
    cfg = CoreConfig(
        features=FEATURE_NAMES,
        drift_columns=("amount", "card_n_30d", "card_mean_7d"),
        review_threshold=0.3,
        label_delay_s=DAY,
        window_s=DAY,
        window_size=700,
        window_rows=300,  # a time window samples: its random state must carry over
        label_window=450,
        warmup_s=2 * DAY,
        reference_s=3 * DAY,
        reference_rows=600,  # a reservoir over 1500 rows: its random state too
        policy=PolicyConfig(cooldown_s=0, drift_windows=1),
    )
    return MonitorCore(cfg, ConceptDriftMonitor())


class Run:
    """A core fed day by day (scores of day d, then labels of day d - 1), recording what it
    decided and stored (alert and request ids and wall times left out)."""

    def __init__(self, core: MonitorCore):
        self.core = core
        self.stored: list[tuple[str, bytes]] = []
        core.store = lambda kind, res: self.stored.append(
            (kind, orjson.dumps(res, option=orjson.OPT_SERIALIZE_NUMPY))
        )
        self.decided: list[Any] = []

    def feed(self, days: range, seed: int = 7) -> None:
        for d in days:
            rng = np.random.default_rng(seed * 1000 + d)
            rows = day_rows(d, rng)
            for chunk in range(0, len(rows), 200):
                self._keep(self.core.scores(rows[chunk : chunk + 200]))
            if d > 0:
                prev = day_rows(d - 1, np.random.default_rng(seed * 1000 + d - 1))
                self._keep(self.core.labels(day_labels(prev, d - 1, rng), "champ-1"))

    def _keep(self, dec: Decision) -> None:
        self.decided += [(a.kind, a.severity, a.subject, a.message, a.details)
                         for a in dec.alerts]  # fmt: skip
        self.decided += [(c.action, c.target, c.reason, c.details) for c in dec.controls]


def restarted(before: MonitorCore, snapshots: dict[str, bytes]) -> MonitorCore:
    """A new core given what a restarted runner gets back: the snapshots and what
    streams.monitor.persist keeps (policy, data quality, the estimates ledger)."""
    core = make_core()
    for part, blob in snapshots.items():
        core.restore_snapshot(part, blob)
    core.policy.restore(orjson.loads(orjson.dumps(before.policy.state())))
    core.restore_quality(orjson.loads(orjson.dumps(before.quality_state())))
    waiting, _ = before.ledger.changes()
    core.ledger.load(orjson.loads(orjson.dumps(e, option=orjson.OPT_SERIALIZE_NUMPY))
                     for e in waiting.values())  # fmt: skip
    return core


@pytest.mark.parametrize("cut", [4, 7], ids=["collecting-reference", "judging"])
def test_a_restored_core_decides_as_the_one_that_never_stopped(cut: int) -> None:
    a = Run(make_core())
    a.feed(range(cut))
    blobs = {part: a.core.snapshot(part) for part in ("scores", "labels")}
    a.stored, a.decided = [], []  # from here on
    b = Run(restarted(a.core, blobs))
    fresh = Run(restarted(a.core, {}))  # without the snapshots (the monitor before them)
    for run in (a, b, fresh):
        run.feed(range(cut, 14))
    assert a.decided and {d[0] for d in a.decided} >= {"drift", "retrain"}, a.decided
    assert b.decided == a.decided
    assert b.stored == a.stored
    assert b.core.status() == a.core.status() == {**a.core.status(), "state": "ready"}
    # the snapshots carry something: without them the windows and detectors start afresh
    assert fresh.stored != a.stored and fresh.decided != a.decided


def test_the_detectors_and_windows_come_back_not_just_the_reference() -> None:
    a = Run(make_core())
    a.feed(range(9))
    b = restarted(a.core, {p: a.core.snapshot(p) for p in ("scores", "labels")})
    assert b.concept.report() == a.core.concept.report() and b.concept.report()
    assert [w.open_windows for w in b.windows if hasattr(w, "open_windows")] == [
        w.open_windows for w in a.core.windows if hasattr(w, "open_windows")
    ]
    assert len(b.labeled._buf) == len(a.core.labeled._buf) > 0
    # the label-shift tallies (the reference's labels and the open windows' counts)
    rates, kept = a.core.label_rates, b.label_rates
    assert (kept.ref, kept.open, kept.next) == (rates.ref, rates.open, rates.next)
    assert rates.ref[1] > 0 and rates.open


def test_a_time_window_keeps_its_rows_packed_and_hands_them_back_as_they_came() -> None:
    """A day's rows are kept as bytes (monitors.core.config.RowCodec: a fraction of a dict's
    memory, quick to snapshot); the closed window's rows are the ones that came, exactly, and a
    restored window's too (the codec's table of key tuples is pickled with the window)."""
    core = make_core()
    rows = day_rows(0, np.random.default_rng(3))
    for i, r in enumerate(rows):  # what a row may hold: NaN, nulls, ints beside floats
        r["x"][i % 5] = (math.nan, None, 3, -0.0, math.inf)[i % 5]
        if i % 3 == 0:  # rows of another shape (keys), which the codec numbers apart
            rows[i] = {"batch_model": f"m{i % 2}", **r}
    core.scores(rows)
    tw = next(w for w in core.windows if isinstance(w, TimeWindows))
    kept = tw._open[0].items
    assert len(kept) == 300 and {type(e) for e in kept} == {bytes}
    restored = pickle.loads(pickle.dumps(tw))  # as a snapshot carries it, rows still open
    (win,) = tw.flush()
    (again,) = restored.flush()
    assert [repr(e) for e in again.events] == [repr(e) for e in win.events]
    assert len({tuple(e) for e in win.events}) == 2  # key order kept, per shape
    assert win.n == 500 and len(win.events) == 300
    came = {repr(r) for r in rows}  # repr: NaN equals itself, 3 is not 3.0
    assert all(repr(e) in came for e in win.events)
    # closed, they stay packed: each read unpacks one afresh (a day's 50,000 rows as dicts
    # at once were ~97 MB of the helper's memory), the same row each time
    assert isinstance(win.events, Unpacked) and win.events[7] is not win.events[7]
    assert repr(win.events[7]) == repr(win.events[7]) and repr(list(win.events)[7]) in came
    assert pickle.loads(pickle.dumps(tw))._open == {}  # (flushed) and picklable


def test_the_row_codec_numbers_a_bounded_set_of_shapes_and_keeps_the_rest_as_maps() -> None:
    """Rows of more key tuples than the codec's table holds (a hostile or buggy producer's
    rows cannot grow it): the table stops at ``SHAPES``, later shapes are kept as maps, and
    every row, numbered or not, comes back as it came, before and after a pickle."""
    codec = RowCodec()
    rows = [{f"k{i}": i, "x": [1.5, None], "n": 2**70 if i == 3 else i} for i in range(100)]
    rows += [{"x": [0.5], "k5": 5}, {"k5": 5, "x": [0.5]}]  # past the table: maps, order kept
    kept = [codec.pack(r) for r in rows]
    assert len(codec.shapes) == RowCodec.SHAPES
    assert kept[3] is rows[3]  # past 64 bits: kept as it came
    decoded = [msgspec.msgpack.decode(k) for k in kept if isinstance(k, bytes)]
    n = RowCodec.SHAPES - 1  # the numbered ones (the 64th shape was the unpackable row's)
    assert all(isinstance(d, list) for d in decoded[:n])
    assert all(isinstance(d, dict) for d in decoded[n:]) and len(decoded[n:]) == 38
    again = pickle.loads(pickle.dumps(codec))
    for c in (codec, again):
        assert [repr(c.unpack(k)) for k in kept] == [repr(r) for r in rows]


def test_a_snapshot_is_compressed_as_it_is_pickled_and_reads_as_one_compressed_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pickle goes to zlib frame by frame (never held whole: a day's window pickles to
    ~21 MB); the blob is the zlib stream ``zlib.compress`` makes, so either restores."""
    a = Run(make_core())
    a.feed(range(4))
    writes: list[int] = []
    real = snapshot_mod._Deflate.write
    monkeypatch.setattr(
        snapshot_mod._Deflate,
        "write",
        lambda self, data: writes.append(len(data)) or real(self, data),
    )
    blob = a.core.snapshot("scores")
    body = zlib.decompress(blob[len(MAGIC) + 1 :])
    assert len(writes) > 1 and max(writes) < len(body) and sum(writes) == len(body)
    whole = MAGIC + bytes([SNAPSHOT_VERSION]) + zlib.compress(body, 1)
    for b in (blob, whole):
        core = make_core()
        core.restore_snapshot("scores", b)
        assert [w.open_windows for w in core.windows if hasattr(w, "open_windows")] == [
            w.open_windows for w in a.core.windows if hasattr(w, "open_windows")
        ]


def _damaged(blob: bytes) -> list[tuple[str, bytes]]:
    body = pickle.loads(zlib.decompress(blob[len(MAGIC) + 1 :]))
    other_code = pickle.dumps({**body, "code": "0" * 16})
    other_config = pickle.dumps({**body, "config": "()"})
    return [
        ("empty", b""),
        ("not ours", b"{not a snapshot"),
        ("old format", MAGIC + bytes([SNAPSHOT_VERSION - 1]) + blob[len(MAGIC) + 1 :]),
        ("truncated", blob[: len(blob) // 2]),
        ("flipped byte", blob[:40] + bytes([blob[40] ^ 0xFF]) + blob[41:]),
        ("other code", MAGIC + bytes([SNAPSHOT_VERSION]) + zlib.compress(other_code)),
        ("other config", MAGIC + bytes([SNAPSHOT_VERSION]) + zlib.compress(other_config)),
    ]


@pytest.mark.parametrize("part", ["scores", "labels"])
def test_a_snapshot_that_cannot_be_used_is_refused_and_changes_nothing(part: str) -> None:
    a = Run(make_core())
    a.feed(range(7))
    core = make_core()
    untouched = (core.status(), core.concept.report(), core.as_of, len(core.labeled._buf))
    for why, blob in _damaged(a.core.snapshot(part)):
        with pytest.raises(SnapshotError):
            core.restore_snapshot(part, blob)
        assert (core.status(), core.concept.report(), core.as_of,
                len(core.labeled._buf)) == untouched, why  # fmt: skip
    with pytest.raises(SnapshotError):  # one part's blob is not the other's
        core.restore_snapshot("labels" if part == "scores" else "scores", a.core.snapshot(part))


class FakeRedis:
    def __init__(self, values: dict[str, bytes]):
        self.values = values

    def get(self, key: str) -> bytes | None:
        return self.values.get(key)


class FakePipe:
    def __init__(self) -> None:
        self.ops: list[tuple[str, str]] = []

    def set(self, key: str, value: bytes) -> None:
        self.ops.append(("set", key))

    def delete(self, key: str) -> None:
        self.ops.append(("delete", key))


class Runner:
    ref_token = ref_champion = champion = "x"
    online_resets = 3


def test_the_runner_ignores_an_unusable_snapshot_and_restores_a_good_one() -> None:
    a = Run(make_core())
    a.feed(range(7))
    names = Names("t-")
    good = a.core.snapshot("scores", {"ref_token": "tok", "ref_champion": "m1"})
    r = FakeRedis({names.monitor("snapshot:scores"): good,
                   names.monitor("snapshot:labels"): b"RWMS\x01garbage"})  # fmt: skip
    core, runner = make_core(), Runner()
    Snapshots(r, names, 5.0).restore(core, runner)  # type: ignore[arg-type]
    assert core.ready and core.status() == a.core.status()
    assert (runner.ref_token, runner.ref_champion) == ("tok", "m1")
    assert (runner.champion, runner.online_resets) == ("x", 3)  # labels part not used
    assert core.concept.report() == [] and len(core.labeled._buf) == 0


def test_snapshots_are_written_when_due_and_dirty_not_per_batch() -> None:
    now = [0.0]
    names = Names("t-")
    snaps = Snapshots(FakeRedis({}), names, 5.0, clock=lambda: now[0])  # type: ignore[arg-type]
    core, runner = make_core(), Runner()
    pipe = FakePipe()
    snaps.dirty.add("scores")
    for t in (0.0, 1.0, 4.9):  # batches before the interval: nothing written
        now[0] = t
        snaps.save(pipe, core, runner)  # type: ignore[arg-type]
    assert pipe.ops == []
    now[0] = 5.0
    snaps.save(pipe, core, runner)  # type: ignore[arg-type]
    assert pipe.ops == [("set", names.monitor("snapshot:scores"))]
    now[0] = 20.0
    snaps.save(pipe, core, runner)  # type: ignore[arg-type]  # nothing processed since
    assert len(pipe.ops) == 1
    snaps.dirty.add("labels")
    snaps.final = True  # stopping: every batch is written at once
    now[0] = 20.1
    snaps.save(pipe, core, runner)  # type: ignore[arg-type]
    assert pipe.ops[1:] == [("set", names.monitor("snapshot:labels"))]


def test_a_snapshot_that_fails_or_is_too_big_never_fails_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = Names("t-")
    now = [0.0]
    snaps = Snapshots(FakeRedis({}), names, 5.0, clock=lambda: now[0])  # type: ignore[arg-type]
    core, runner, pipe = make_core(), Runner(), FakePipe()
    now[0] = 6.0  # due

    def broken(part: str, extra: Any = None) -> bytes:
        raise TypeError("cannot pickle")

    monkeypatch.setattr(core, "snapshot", broken)
    snaps.dirty.add("scores")
    snaps.save(pipe, core, runner)  # type: ignore[arg-type]  # logged, nothing written
    assert pipe.ops == [] and snaps.dirty == set()  # (the next batch tries again)
    monkeypatch.setattr(core, "snapshot", lambda part, extra=None: b"x" * 64)
    monkeypatch.setattr("riverwatch.streams.monitor.snapshot.MAX_BYTES", 32)
    snaps.dirty.add("labels")
    snaps.final = True
    snaps.save(pipe, core, runner)  # type: ignore[arg-type]  # too big: the old one goes
    assert pipe.ops == [("delete", names.monitor("snapshot:labels"))]


def test_a_snapshot_whose_pipeline_failed_is_due_again_at_once() -> None:
    now = [0.0]
    names = Names("t-")
    snaps = Snapshots(FakeRedis({}), names, 5.0, clock=lambda: now[0])  # type: ignore[arg-type]
    core, runner, pipe = make_core(), Runner(), FakePipe()
    now[0] = 6.0  # due
    snaps.dirty.add("scores")
    snaps.save(pipe, core, runner)  # type: ignore[arg-type]
    assert snaps.dirty == set() and not snaps.due()
    snaps.unwritten()  # Redis failed that pipeline
    assert snaps.dirty == {"scores"} and snaps.due()
    snaps.save(FakePipe(), core, runner)  # type: ignore[arg-type]  # written this time
    snaps.save(FakePipe(), core, runner)  # type: ignore[arg-type]  # not due: no snapshot
    snaps.unwritten()  # that pipeline failed: it held no snapshot to write again
    assert snaps.dirty == set()


class PersistPipe(FakePipe):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, list[str]]] = []

    def hset(self, key: str, mapping: dict[str, bytes]) -> None:
        self.fields.append(("hset", sorted(mapping)))

    def hdel(self, key: str, *fields: str) -> None:
        self.fields.append(("hdel", list(fields)))


def test_the_state_a_failed_pipeline_held_is_written_with_the_next() -> None:
    """Persisted.save marks what it wrote as saved; a pipeline Redis failed must not leave
    the policy's state or the estimate ledger's changes marked so (they were lost)."""
    names = Names("t-")
    persisted = Persisted(FakeRedis({}), names)  # type: ignore[arg-type]
    core = make_core()
    policy = SimpleNamespace(state=lambda: {"cooldowns": {"retrain": 1}})
    changes = iter([({"w1": {"n": 1}, "w2": {"n": 1}}, ["w0"]), ({"w3": {"n": 1}}, ["w2"])])
    core.ledger.changes = lambda: next(changes)  # type: ignore[method-assign]
    first = PersistPipe()
    persisted.save(first, policy, core)  # type: ignore[arg-type]
    assert first.ops == [("set", names.monitor("policy"))]
    persisted.written(False, core)  # Redis failed it
    again = PersistPipe()
    persisted.save(again, policy, core)  # type: ignore[arg-type]
    assert ("set", names.monitor("policy")) in again.ops  # unchanged, written again
    assert again.fields == [("hset", ["w1", "w3"]), ("hdel", ["w0", "w2"])]
    persisted.written(True, core)
    core.ledger.changes = lambda: ({}, [])  # type: ignore[method-assign]
    last = PersistPipe()
    persisted.save(last, policy, core)  # type: ignore[arg-type]
    assert last.ops == [] and last.fields == []  # written: nothing again
