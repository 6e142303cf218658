"""`riverwatch simulate` warns when its event times will pass the receivers' clock bound."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from riverwatch.shell.cli import app
from riverwatch.shell.simrun import clock_warning

DAY = 86_400.0


def test_a_run_inside_the_bound_gets_no_warning() -> None:
    assert clock_warning(0.0, 10 * DAY, DAY, now=9.5 * DAY) is None


def test_the_warning_names_the_moment_the_bound_is_passed() -> None:
    text = clock_warning(0.0, 30 * DAY, DAY, now=10 * DAY)
    assert text is not None
    assert "1970-01-12 00:00 UTC" in text  # now + skew: day 11
    assert "RIVERWATCH_MAX_FUTURE_SKEW_S=0" in text and "--start" in text


def test_a_start_past_the_bound_is_named_as_the_start() -> None:
    text = clock_warning(100 * DAY, 101 * DAY, DAY, now=0.0)
    assert text is not None and "1970-04-11 00:00 UTC" in text


def test_no_bound_means_no_warning() -> None:
    assert clock_warning(0.0, None, 0.0, now=0.0) is None


@pytest.mark.parametrize(("start", "warned"), [("2099-01-01", True), ("2020-01-01", False)])
def test_simulate_prints_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str, warned: bool
) -> None:
    monkeypatch.setenv("RIVERWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RIVERWATCH_MAX_FUTURE_SKEW_S", raising=False)
    out = tmp_path / "events.ndjson"
    args = ["simulate", "--sink", "ndjson", "--out", str(out), "--days", "1", "--start", start]
    result = CliRunner().invoke(app, [*args, "--customers", "20", "--terminals", "20"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0
    assert ("ahead of the clock" in result.output) is warned
