"""`riverwatch keys`: create, list and revoke API keys (in the running system's Redis)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from riverwatch.shell.clisettings import running_settings

if TYPE_CHECKING:
    import redis

    from riverwatch.core.names import Names

keys = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)


def _redis() -> tuple[redis.Redis, Names]:
    """A client of the running system's Redis and its key names (imported here: the CLI's
    other commands need neither)."""
    from riverwatch.context import Context
    from riverwatch.core.redis import redis_client

    ctx = Context.from_settings(running_settings(("redis",))[0])
    return redis_client(ctx.redis_config), ctx.names


@keys.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: ingest, read, admin.")] = "read",
) -> None:
    """Create a key and print it (it is shown once; only its hash is stored)."""
    from riverwatch.core.apikeys import create_key

    r, names = _redis()
    typer.echo(create_key(r, names, name, scopes.split(",")))


@keys.command("list")
def keys_list() -> None:
    """List key names and scopes (never the keys)."""
    from riverwatch.core.apikeys import list_keys

    r, names = _redis()
    for info in list_keys(r, names).values():
        typer.echo(f"{info.name}\t{','.join(info.scopes)}\t{info.created}")


@keys.command("revoke")
def keys_revoke(name: Annotated[str, typer.Option(help="Revoke every key of this name.")]) -> None:
    """Revoke keys by name."""
    from riverwatch.core.apikeys import revoke_name

    r, names = _redis()
    typer.echo(f"revoked {revoke_name(r, names, name)} key(s)")
