"""The settings of a command line: from the environment (a configuration error is a message
and exit code 2), and for a command that talks to the running system, completed from the
``endpoints.json`` a running `riverwatch up` keeps."""

from __future__ import annotations

import logging

import typer

from riverwatch.core.settings import Settings, load_settings


def settings_or_exit(**overrides: object) -> Settings:
    """The settings (``overrides`` that are not None win over the environment), logging set up;
    a configuration error is a message and exit code 2."""
    try:
        s = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except Exception as exc:  # pydantic's message names the field; keep it, drop the trace
        typer.secho(f"configuration error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    logging.basicConfig(level=s.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return s


def running_settings(
    need: tuple[str, ...] = (), **overrides: object
) -> tuple[Settings, str | None]:
    """Settings for a command that talks to the running system, and its API URL if known.

    Whatever RIVERWATCH_KAFKA_BOOTSTRAP / RIVERWATCH_REDIS_URL leave unset is read from the
    ``endpoints.json`` that a running `riverwatch up` keeps in the data dir. ``need`` names
    what the command cannot do without ("kafka", "redis"): without it, a clear message.
    """
    from riverwatch.core.runfiles import ENDPOINTS, read_endpoints

    s = settings_or_exit(**overrides)
    found = read_endpoints(s.data_dir)
    if found is not None:
        s = s.model_copy(
            update={
                "kafka_bootstrap": s.kafka_bootstrap or found.bootstrap,
                "redis_url": s.redis_url or found.redis_url,
            }
        )
    missing = [
        var
        for what, var, value in (
            ("kafka", "RIVERWATCH_KAFKA_BOOTSTRAP", s.kafka_bootstrap),
            ("redis", "RIVERWATCH_REDIS_URL", s.redis_url),
        )
        if what in need and not value
    ]
    if missing:
        typer.secho(
            f"nothing running: no `riverwatch up` is running on data dir {s.data_dir.resolve()} "
            f"(no live {ENDPOINTS} there) and {' / '.join(missing)} is not set. Start "
            "`riverwatch up` (or `make run`), pass the same RIVERWATCH_DATA_DIR as it, or set "
            "the variables to a running Kafka / Redis.",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)
    return s, found.api_url if found is not None else None


def sink_needs(sink: str) -> tuple[str, ...]:
    """What a simulator sink needs running (for :func:`running_settings`)."""
    return ("kafka",) if sink == "kafka" else ()
