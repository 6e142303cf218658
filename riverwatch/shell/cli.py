"""The `riverwatch` command line (its settings: shell/clisettings.py; `keys`: shell/keys.py)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from riverwatch.core.errors import RiverwatchError
from riverwatch.core.roles import Role
from riverwatch.core.settings import load_settings
from riverwatch.shell.clisettings import running_settings, settings_or_exit, sink_needs
from riverwatch.shell.keys import keys

app = typer.Typer(
    help="riverwatch: streaming scoring and monitoring of ML models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class Broker(StrEnum):
    """The brokers `up` can start."""

    tansu = "tansu"
    kafka = "kafka"


@app.command()
def up(
    demo: Annotated[
        bool,
        typer.Option(
            help="Also run the demo: event days backfilled past the warm-up, then a drift "
            "episode the monitor catches (shell/demo.py)."
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(min=1, help="Scoring worker processes (one per core), besides one helper."),
    ] = 1,
    api_port: Annotated[
        int | None, typer.Option(help="API port [env RIVERWATCH_API_PORT].")
    ] = None,
    for_: Annotated[float | None, typer.Option("--for", help="Stop after SECONDS.")] = None,
    broker: Annotated[
        Broker,
        typer.Option(
            help="Broker started when RIVERWATCH_KAFKA_BOOTSTRAP is unset: tansu (in memory, "
            "starts at once) or kafka (Apache Kafka; Java 17 and Maven, jars fetched once).",
        ),
    ] = Broker.tansu,
) -> None:
    """Start the whole system; the embedded broker/Valkey for whatever is not configured."""
    from riverwatch.shell.up import run_up

    s = settings_or_exit()
    run_up(s, demo, workers, api_port if api_port is not None else s.api_port, for_, broker.value)


@app.command()
def worker(
    roles: Annotated[
        str | None,
        typer.Option(
            help=f"What this worker runs: 'all' or some of {', '.join(Role)} "
            "[env RIVERWATCH_WORKER_ROLES]."
        ),
    ] = None,
) -> None:
    """Run one stream worker (scoring, learning, ... : its roles) against the configured stack."""
    s = settings_or_exit(worker_roles=roles)  # an unknown role: a message and exit code 2
    from riverwatch.context import Context
    from riverwatch.shell.stopping import BoundedWorker
    from riverwatch.streams.app import create_app

    if s.worker_metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(s.worker_metrics_port, addr=s.api_host)
    app = create_app(Context.from_settings(s))
    worker = BoundedWorker(app, loglevel=s.log_level.lower(), quiet=True)
    worker.grace_s = s.worker_stop_grace_s
    worker.execute_from_commandline()


@app.command()
def api(
    port: Annotated[int | None, typer.Option(help="Port [env RIVERWATCH_API_PORT].")] = None,
) -> None:
    """Serve the HTTP API and dashboard."""
    import uvicorn

    from riverwatch.api.main import create_app
    from riverwatch.context import Context

    s = settings_or_exit(api_port=port)
    uvicorn.run(
        create_app(Context.from_settings(s)),
        timeout_graceful_shutdown=5,  # open SSE streams must not hold a shutdown
        host=s.api_host,
        port=s.api_port,
        log_level=s.log_level.lower(),
        access_log=False,
    )


@app.command()
def simulate(
    sink: Annotated[str, typer.Option(help="kafka, http or ndjson.")] = "kafka",
    days: Annotated[float | None, typer.Option(help="Simulated days (default: endless).")] = None,
    customers: Annotated[int, typer.Option(min=1)] = 5000,
    terminals: Annotated[int, typer.Option(min=1)] = 10000,
    seed: Annotated[int, typer.Option()] = 0,
    days_per_minute: Annotated[
        float | None, typer.Option(help="Time compression; default as fast as possible.")
    ] = None,
    demo: Annotated[bool, typer.Option(help="Demo preset: small population, paced.")] = False,
    out: Annotated[Path | None, typer.Option(help="NDJSON file for --sink ndjson.")] = None,
    url: Annotated[str | None, typer.Option(help="API base URL for --sink http.")] = None,
    key: Annotated[str | None, typer.Option(help="API key for --sink http.")] = None,
    start: Annotated[str | None, typer.Option(help="Simulated start date (ISO).")] = None,
    label_delay_days: Annotated[int, typer.Option(min=0)] = 7,
    legit_label_share: Annotated[float, typer.Option(min=0, max=1)] = 1.0,
    drift_day: Annotated[
        int | None, typer.Option(help="A new fraud pattern from this day.")
    ] = None,
    bias: Annotated[str | None, typer.Option(help="Group bias, e.g. age_band=65+.")] = None,
    series: Annotated[bool, typer.Option(help="Also emit a demo metric series.")] = False,
    warmup_days: Annotated[
        float, typer.Option(min=0, help="Simulated days sent unpaced first.")
    ] = 0.0,
) -> None:
    """Generate transactions and delayed labels (Fraud Detection Handbook design) into a sink."""
    from riverwatch.shell.simrun import SimRun, run_simulation

    s, api_url = running_settings(sink_needs(sink))
    run = SimRun(
        sink=sink,
        days=days,
        customers=customers,
        terminals=terminals,
        seed=seed,
        days_per_minute=days_per_minute,
        demo=demo,
        out=out,
        url=url or api_url,
        key=key,
        start=datetime.fromisoformat(start) if start else None,
        label_delay_days=label_delay_days,
        legit_label_share=legit_label_share,
        drift_day=drift_day,
        bias=bias,
        series=series,
        warmup_days=warmup_days,
    )
    run_simulation(s, run)


@app.command()
def demo() -> None:
    """The demo's traffic and story (warm-up, calm, a drift episode); `up --demo` runs it."""
    from riverwatch.shell.demo import run_demo

    run_demo(running_settings(("kafka", "redis"))[0])


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="NDJSON events.")],
    sink: Annotated[str, typer.Option(help="kafka or http (through the API).")] = "http",
    days_per_minute: Annotated[
        float | None, typer.Option(help="Pace by the events' times; default as fast as possible.")
    ] = None,
    url: Annotated[str | None, typer.Option(help="API base URL for --sink http.")] = None,
    key: Annotated[str | None, typer.Option(help="API key (default: <data dir>/api-key).")] = None,
) -> None:
    """Push an NDJSON file (as written by `simulate --sink ndjson`) through the live path."""
    from riverwatch.shell.simrun import make_sink, with_progress
    from riverwatch.simulator import pump, read_ndjson

    s, api_url = running_settings(sink_needs(sink))
    target = make_sink(s, sink, None, url or api_url, key)
    try:
        sent = pump(with_progress(read_ndjson(file)), target, sim_days_per_minute=days_per_minute)
    finally:
        target.close()
    typer.echo(f"replayed {sent:,} events from {file}")


@app.command()
def status() -> None:
    """One screen: workers, rates, latency, decisions, models, labels, lag."""
    from riverwatch.shell.status import collect, render

    typer.echo(render(collect(running_settings(("redis",))[0])))


@app.command()
def train(
    now: Annotated[
        str | None, typer.Option(help="Train as of this event time (ISO, UTC if naive).")
    ] = None,
) -> None:
    """Train a batch challenger from the offline store; promote it only if it wins."""
    from riverwatch.shell.train import run_train

    if not run_train(running_settings(("redis",))[0], now, typer.echo):
        raise typer.Exit(1)


class HealthTarget(StrEnum):
    worker = "worker"
    api = "api"
    producer = "producer"


@app.command()
def healthcheck(
    target: Annotated[HealthTarget, typer.Argument(help="What this container runs.")],
) -> None:
    """Exit 0 when this container's process is alive (a worker: its heartbeat in Redis is
    younger than 3 beats; the API: /healthz answers; a producer such as the simulator: the
    broker answers), 1 otherwise (the compose, image and k8s probes)."""
    from riverwatch.shell.health import api_alive, worker_alive

    s = load_settings()  # the container's own environment; no endpoints.json, no logging setup
    if target is HealthTarget.worker:
        alive = worker_alive(s)
    elif target is HealthTarget.api:
        alive = api_alive(s)
    else:
        from riverwatch.context_parts import kafka_config
        from riverwatch.core.kafka import broker_reachable

        alive = broker_reachable(kafka_config(s), 5.0)
    typer.echo(f"{target.value}: {'alive' if alive else 'not alive'}")
    if not alive:
        raise typer.Exit(1)


app.add_typer(keys, name="keys")


def main() -> None:
    """Entry point: turn riverwatch's own errors into a message and exit code 1."""
    try:
        app()
    except RiverwatchError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise SystemExit(1) from exc
