"""`riverwatch keys`: create, list and revoke API keys (in the running system's Redis)."""

from __future__ import annotations

from typing import Annotated

import typer

from riverwatch.shell.clisettings import running_settings

keys = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)


@keys.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: ingest, read, admin.")] = "read",
) -> None:
    """Create a key and print it (it is shown once; only its hash is stored)."""
    from riverwatch.core.apikeys import create_key
    from riverwatch.core.names import Names
    from riverwatch.core.redis import redis_client

    s = running_settings(("redis",))[0]
    typer.echo(create_key(redis_client(s), Names(s.topic_prefix), name, scopes.split(",")))


@keys.command("list")
def keys_list() -> None:
    """List key names and scopes (never the keys)."""
    from riverwatch.core.apikeys import list_keys
    from riverwatch.core.names import Names
    from riverwatch.core.redis import redis_client

    s = running_settings(("redis",))[0]
    for info in list_keys(redis_client(s), Names(s.topic_prefix)).values():
        typer.echo(f"{info.name}\t{','.join(info.scopes)}\t{info.created}")


@keys.command("revoke")
def keys_revoke(name: Annotated[str, typer.Option(help="Revoke every key of this name.")]) -> None:
    """Revoke keys by name."""
    from riverwatch.core.apikeys import revoke_name
    from riverwatch.core.names import Names
    from riverwatch.core.redis import redis_client

    s = running_settings(("redis",))[0]
    typer.echo(f"revoked {revoke_name(redis_client(s), Names(s.topic_prefix), name)} key(s)")
