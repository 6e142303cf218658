"""Every PromQL query of the alert rules and the Grafana dashboard reads metrics the app exports.

No tool does this: promtool checks the syntax of rules, not that their metrics exist. The
queries are parsed with ``promql_parser`` (the Rust PromQL parser), never with regexes; the
names and labels the app exports come from prometheus_client's registry.
"""

from __future__ import annotations

import re
from functools import cache

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY

import riverwatch.core.metrics  # noqa: F401  (registers the app's metrics in prometheus_client's REGISTRY)
from tests.deploy.files import (
    GRAFANA,
    all_queries,
    dashboard_expressions,
    dashboard_panels,
    rule_expressions,
    rules,
)

# Series Prometheus adds to every scrape target itself.
PROMETHEUS_SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
# Labels Prometheus attaches to every scraped series, and the histogram bucket label.
IMPLICIT_LABELS = frozenset({"job", "instance", "le"})
# Grafana's range variables ($__rate_interval, ...): any valid range will do for parsing.
_GRAFANA_RANGE = re.compile(r"\[\$\{?\w+\}?\]")

_SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}


@cache
def exported_series() -> dict[str, frozenset[str]]:
    """Every series name the app exports -> its label names.

    Names come from REGISTRY.collect() (a Counter ``x`` exports ``x_total``, a Histogram ``x``
    exports ``x_bucket``/``x_sum``/``x_count``); label names from the collector objects, which
    prometheus_client keeps only in private attributes.
    """
    names_to_collectors = getattr(REGISTRY, "_names_to_collectors", {})
    out: dict[str, frozenset[str]] = {}
    for family in REGISTRY.collect():
        collector = names_to_collectors.get(family.name)
        labels = frozenset(getattr(collector, "_labelnames", ()))
        for suffix in _SERIES_SUFFIXES[family.type]:
            out[family.name + suffix] = labels
    return out


def parse(expr: str) -> promql_parser.Expr:
    """The AST of a rule's or a panel's expression (Grafana's range variables filled in)."""
    return promql_parser.parse(_GRAFANA_RANGE.sub("[5m]", expr))


def selectors(expr: str) -> list[tuple[str, frozenset[str]]]:
    """(metric name, label names it matches on) for each metric an expression reads."""
    found: list[tuple[str, frozenset[str]]] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"select metrics by name, not by __name__: {expr}"
            matchers = [*node.matchers.matchers, *(m for g in node.matchers.or_matchers for m in g)]
            found.append((node.name, frozenset(m.name for m in matchers)))

    promql_parser.walk(parse(expr), visit)
    return found


def grouping_labels(expr: str) -> set[str]:
    """Label names of ``by``/``without`` and ``on``/``ignoring``/``group_left`` clauses."""
    labels: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier:
            labels.update(node.modifier.labels)
        if isinstance(node, promql_parser.BinaryExpr) and node.modifier:
            if node.modifier.matching:
                labels.update(node.modifier.matching.labels)
            labels.update(node.modifier.group_labels or ())

    promql_parser.walk(parse(expr), visit)
    return labels


@pytest.mark.parametrize(
    ("expr", "metrics", "grouping"),
    [
        (
            'sum by (topic) (rate(a_total{outcome="x", topic=~"y"}[$__rate_interval])) / b > 1e-3',
            [("a_total", {"outcome", "topic"}), ("b", set())],
            {"topic"},
        ),
        (
            "histogram_quantile(0.99, sum by (le, route) (rate(h_bucket[5m])))",
            [("h_bucket", set())],
            {"le", "route"},
        ),
        ('up{job="api"} == 0 and on () max(abs(g)) > 0.5', [("up", {"job"}), ("g", set())], set()),
        (
            "max by (attribute, metric) (f) / on (metric) group_left (x) h",
            [("f", set()), ("h", set())],
            {"attribute", "metric", "x"},
        ),
    ],
)
def test_selector_and_grouping_extraction(
    expr: str, metrics: list[tuple[str, set[str]]], grouping: set[str]
) -> None:
    """The AST walk the cross-checks rely on finds exactly the metrics and labels used."""
    assert selectors(expr) == [(n, frozenset(labels)) for n, labels in metrics]
    assert grouping_labels(expr) == grouping


def test_queries_name_only_exported_metrics() -> None:
    """Every metric a Prometheus rule or a Grafana panel reads is exported by the app, with
    the labels it matches on."""
    exported = exported_series()
    problems = []
    used = set()
    for where, expr in all_queries().items():
        for name, labels in selectors(expr):
            if name in PROMETHEUS_SYNTHETIC:
                continue
            if name not in exported:
                problems.append(f"{where}: unknown metric {name}")
                continue
            used.add(name)
            extra = labels - exported[name] - IMPLICIT_LABELS
            if extra:
                problems.append(f"{where}: {name} has no label {sorted(extra)}")
    assert not problems, "\n".join(problems)
    assert len(used) >= 5, f"suspiciously few metrics found: {used}"


def test_query_grouping_labels_exist() -> None:
    """``by (...)`` / ``on (...)`` labels are labels of a metric the expression reads."""
    exported = exported_series()
    problems = []
    for where, expr in all_queries().items():
        names = [n for n, _ in selectors(expr) if n not in PROMETHEUS_SYNTHETIC]
        allowed = set(IMPLICIT_LABELS).union(*(exported.get(n, frozenset()) for n in names))
        missing = grouping_labels(expr) - allowed
        if missing:
            problems.append(f"{where}: grouping by {sorted(missing)}, not labels of {names}")
    assert not problems, "\n".join(problems)


def test_rules_cover_the_required_alerts() -> None:
    """Alert rules for consumer lag, dead letters, drift, fairness and missing scores exist."""
    exprs = rule_expressions()
    joined = "\n".join(exprs.values())
    assert "riverwatch_consumer_lag" in joined
    assert 'outcome="deadletter"' in joined
    assert "riverwatch_drift_share" in joined
    assert "riverwatch_fairness_difference" in joined
    assert any('outcome="scored"' in e and "== 0" in e for e in exprs.values())
    for rule in rules():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]


def test_dashboard_has_the_required_panels() -> None:
    """Throughput, latency quantiles, dead letters, batch size, HTTP, model version, monitors."""
    exprs = "\n".join(dashboard_expressions().values())
    for needle in (
        "sum by (topic, outcome) (rate(riverwatch_events_total",
        "histogram_quantile(0.5, sum by (le) (rate(riverwatch_score_latency_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(riverwatch_score_latency_seconds_bucket",
        'outcome="deadletter"',
        "riverwatch_batch_size_",
        "riverwatch_http_request_duration_seconds_bucket",
        "riverwatch_model_version",
        "riverwatch_drift_share",
        "riverwatch_fairness_difference",
        "riverwatch_consumer_lag",
        "riverwatch_monitor_late_events_total",
        "riverwatch_batch_seconds_bucket",
        "riverwatch_gc_pause_seconds_sum",
    ):
        assert needle in exprs, needle
    ids = [p["id"] for p in dashboard_panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_dashboard_uses_the_provisioned_datasource() -> None:
    """Every panel and target names the datasource uid that provisioning creates."""
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (ds,) = provisioned["datasources"]
    for panel in dashboard_panels():
        if panel["type"] == "row":
            continue
        for item in (panel, *panel["targets"]):
            assert item["datasource"] == {"type": ds["type"], "uid": ds["uid"]}, panel["title"]
