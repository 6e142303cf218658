"""The composition root: built once per part, lazily, from one Settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from riverwatch.context import Context
from riverwatch.core.errors import ConfigError
from riverwatch.core.settings import Settings


def test_parts_are_built_once_and_shared_by_the_stores(tmp_path: Path) -> None:
    ctx = Context.from_settings(Settings(topic_prefix="t9-", data_dir=tmp_path))
    assert ctx.features is ctx.features and ctx.policy is ctx.policy
    r = redis.Redis()  # connects on first command; none is sent here
    store = ctx.feature_store(r)
    assert store.names is ctx.names and store.retention_s == ctx.spec.retention_s
    assert ctx.monitor_core().policy is ctx.policy
    assert ctx.offline("w").feature_set is ctx.features


def test_a_bad_setting_fails_the_part_that_reads_it_only() -> None:
    # A malformed list or map fails the Settings themselves now (tests/unit/core/
    # test_settings_types.py); what is left for the parts is a check across settings and
    # code: drift exclusions that name no feature of the model.
    ctx = Context.from_settings(Settings(monitor_drift_exclude="no_such_feature"))
    assert ctx.names.topic("scores") == "scores"  # the API's parts still build
    with pytest.raises(ConfigError, match="no_such_feature"):
        _ = ctx.drift_columns


def test_the_training_protocol_takes_the_settings() -> None:
    cfg = Context.from_settings(Settings(train_members=3, train_half_life_days=0)).training
    assert cfg.members == 3 and cfg.half_life_days is None and cfg.refit
    assert Context.from_settings(Settings()).training.members == 1


def test_the_monitor_warms_up_until_every_feature_window_can_be_full() -> None:
    """The terminals' 30-day windows end a label delay back, so they fill until day 37 at
    the defaults: a reference taken from day 30 (as before) saw ``term_n_30d`` still growing
    and called it drifted in every window of a calm stream (bench.monitor, tuning seed 1)."""
    from riverwatch.context_monitor import warmup_days
    from riverwatch.shell.demo import first_train_day

    day = 86_400.0
    ctx = Context.from_settings(Settings())
    assert ctx.monitor_core({}).warmup_s == 37 * day
    assert warmup_days(Settings(label_delay_days=1)) == 31
    assert warmup_days(Settings(monitor_warmup_days=2.5)) == 2.5  # set: as set
    assert first_train_day(Settings()) == 37 + 7  # warm, then a label delay of labels
