"""Unpickling of states written before the packages moved under ``riverwatch``.

Online-model snapshots, forecaster states and model artifacts are pickles, and a pickle names
the module of every class it holds. Until the architecture pass the project installed
top-level packages (``core``, ``models``, ``monitors``, ``streams``, ``api``); a state stored in
Redis or on disk then still names e.g. ``models.forecast_models``. :func:`loads` reads such a
pickle by mapping the old module names to where the code lives now, so a restart after the
upgrade keeps every model and series (the standard library's ``pickle`` has no hook for this
other than ``Unpickler.find_class``).

>>> import pickle
>>> from riverwatch.models.forecast.types import ForecastConfig
>>> blob = pickle.dumps(ForecastConfig, protocol=0).replace(
...     b"riverwatch.models.forecast.types", b"models.forecast_types")
>>> loads(blob) is ForecastConfig
True
"""

from __future__ import annotations

import io
import pickle
from typing import Any

# Old module -> new module, where the name changed beyond the ``riverwatch.`` prefix.
RENAMED = {
    "api.scoring": "riverwatch.api.sync_scorer",
    "core.alertstore": "riverwatch.alerts.store",
    "core.featurestore": "riverwatch.stores.features",
    "core.registry": "riverwatch.stores.registry",
    "core.snapshots": "riverwatch.stores.snapshots",
    "core.webhooks": "riverwatch.alerts.signing",
    "models.forecast_calendar": "riverwatch.models.forecast.calendar",
    "models.forecast_candidates": "riverwatch.models.forecast.candidates",
    "models.forecast_eval": "riverwatch.models.forecast.evaluate",
    "models.forecast_intervals": "riverwatch.models.forecast.intervals",
    "models.forecast_messages": "riverwatch.models.forecast.messages",
    "models.forecast_models": "riverwatch.models.forecast.estimators",
    "models.forecast_select": "riverwatch.models.forecast.select",
    "models.forecast_types": "riverwatch.models.forecast.types",
    "models.forecasting": "riverwatch.models.forecast.series",
    "monitors.delivery": "riverwatch.alerts.rules",
    "streams.alerts": "riverwatch.streams.alert_dispatcher",
    "streams.monitor": "riverwatch.streams.monitor.agents",
    "streams.monitor_core": "riverwatch.streams.monitor.runner",
    "streams.monitor_data": "riverwatch.streams.monitor.data",
    "streams.offline": "riverwatch.stores.offline",
    "streams.scoring": "riverwatch.streams.scorer",
    "streams.webhooks": "riverwatch.streams.webhook_sender",
}
OLD_PACKAGES = ("core", "models", "monitors", "streams", "api")


def current_module(module: str) -> str:
    """Where a module named by an old pickle lives now (others are returned unchanged).

    >>> current_module("models.forecast_models"), current_module("models.online")
    ('riverwatch.models.forecast.estimators', 'riverwatch.models.online')
    >>> current_module("river.linear_model.log_reg")
    'river.linear_model.log_reg'
    """
    if module in RENAMED:
        return RENAMED[module]
    if module.split(".")[0] in OLD_PACKAGES:
        return f"riverwatch.{module}"
    return module


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(current_module(module), name)


def loads(blob: bytes) -> Any:
    """``pickle.loads`` that also reads pickles naming the modules' old places."""
    return _Unpickler(io.BytesIO(blob)).load()
