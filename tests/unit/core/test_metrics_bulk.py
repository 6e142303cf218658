"""core.metrics.observe_many: a bulk observe that must expose what one observe per value does,
in a process's own registry and in multiprocess mode (how ``riverwatch up`` runs the workers)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
from prometheus_client import CollectorRegistry, Histogram

from riverwatch.core.metrics import observe_many

BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# every bound exactly (observe counts v <= bound in that bucket), either side of one, 0,
# negatives, far past the last bound, infinities
EDGES = [*BUCKETS, 0.0, -1.0, 0.0049999, 0.0050001, 1e9, math.inf, -math.inf, 3.0, 0.3]


def samples(registry: CollectorRegistry, name: str) -> dict[str, float]:
    return {
        s.name + json.dumps(s.labels, sort_keys=True): s.value
        for m in registry.collect()
        for s in m.samples
        if s.name.startswith(name) and not s.name.endswith("_created")
    }


def pair() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    r1, r2 = CollectorRegistry(), CollectorRegistry()
    h1 = Histogram("lat_seconds", "x", ["stage"], buckets=BUCKETS, registry=r1)
    h2 = Histogram("lat_seconds", "x", ["stage"], buckets=BUCKETS, registry=r2)
    return r1, h1, r2, h2


def test_buckets_count_and_sum_equal_one_observe_per_value() -> None:
    r1, h1, r2, h2 = pair()
    finite = [v for v in EDGES if math.isfinite(v)] * 3 + [0.001 * i for i in range(700)]
    for v in finite:
        h1.labels("s").observe(v)
    observe_many(h2.labels("s"), finite)
    observe_many(h2.labels("s"), [])  # nothing: no sample changes
    one, bulk = samples(r1, "lat_seconds"), samples(r2, "lat_seconds")
    assert one.keys() == bulk.keys()
    for k, v in one.items():
        if "_sum" in k:
            assert bulk[k] == pytest.approx(v, rel=1e-12)
        else:
            assert bulk[k] == v, k


@pytest.mark.parametrize("odd", [[math.nan], [math.inf], [-math.inf, 1.0], [math.nan, 0.01]])
def test_non_finite_values_land_where_observe_puts_them(odd: list[float]) -> None:
    r1, h1, r2, h2 = pair()
    for v in odd:
        h1.labels("s").observe(v)
    observe_many(h2.labels("s"), odd)
    one, bulk = samples(r1, "lat_seconds"), samples(r2, "lat_seconds")
    for k, v in one.items():
        assert bulk[k] == v or (math.isnan(v) and math.isnan(bulk[k])), k


def test_multiprocess_mode_exposes_the_same(tmp_path: object) -> None:
    """Each mode in a fresh interpreter (prometheus-client picks its value class at import)."""
    finite = [v for v in EDGES if math.isfinite(v)]
    code = textwrap.dedent(
        f"""
        import json, sys
        from prometheus_client import CollectorRegistry, Histogram, multiprocess
        from riverwatch.core.metrics import observe_many
        h = Histogram("lat_seconds", "x", buckets={BUCKETS!r})
        values = {finite!r} * 5
        if sys.argv[1] == "bulk":
            observe_many(h, values)
        else:
            for v in values:
                h.observe(v)
        r = CollectorRegistry()
        multiprocess.MultiProcessCollector(r)
        print(json.dumps({{s.name + json.dumps(s.labels, sort_keys=True): s.value
                          for m in r.collect() for s in m.samples}}))
        """
    )
    got = {}
    for mode in ("one", "bulk"):
        d = os.path.join(str(tmp_path), mode)
        os.makedirs(d)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": d}
        out = subprocess.run(
            [sys.executable, "-c", code, mode], env=env, capture_output=True, text=True, check=True
        )
        got[mode] = json.loads(out.stdout)
    assert got["one"].keys() == got["bulk"].keys()
    assert any(k.startswith("lat_seconds_bucket") and v for k, v in got["one"].items())
    for k, v in got["one"].items():
        assert got["bulk"][k] == pytest.approx(v, rel=1e-12), k
