"""`republish outlets`: partner outlets; rename, merge, block, unblock."""

from __future__ import annotations

import click

from processor.cli.common import Context, session_for
from processor.config import Config


@click.group(invoke_without_command=True)
@click.pass_context
def outlets(ctx: click.Context) -> None:
    """Partner outlets: pickups per outlet, blocked ones marked; rename, merge, block, unblock."""
    if ctx.invoked_subcommand is not None:
        return
    from processor.desk.listings import format_outlets
    from processor.desk.outlets import list_outlets

    with session_for(ctx.obj.config) as session:
        rows = list_outlets(session)
    click.echo(format_outlets(rows, "table"), nl=False)


@outlets.command(name="rename")
@click.argument("key")
@click.argument("display_name")
@click.pass_obj
def outlets_rename(obj: Context, key: str, display_name: str) -> None:
    """Show outlet KEY as DISPLAY_NAME."""
    from processor.desk.outlets import rename

    click.echo(_outlet_change(obj.config, rename, key, display_name))


@outlets.command(name="merge")
@click.argument("from_key")
@click.argument("into_key")
@click.pass_obj
def outlets_merge(obj: Context, from_key: str, into_key: str) -> None:
    """Move FROM_KEY's pickups and requests to INTO_KEY; FROM_KEY's later requests count for INTO_KEY."""
    from processor.desk.outlets import merge

    click.echo(_outlet_change(obj.config, merge, from_key, into_key))


@outlets.command(name="block")
@click.argument("key")
@click.option("--reason", required=True, help="Why; every later request from this outlet is flagged with it.")
@click.pass_obj
def outlets_block(obj: Context, key: str, reason: str) -> None:
    """Send every later request from KEY to a person instead of answering it."""
    from processor.desk.outlets import block

    click.echo(_outlet_change(obj.config, block, key, reason))


@outlets.command(name="unblock")
@click.argument("key")
@click.pass_obj
def outlets_unblock(obj: Context, key: str) -> None:
    """Answer KEY's requests automatically again."""
    from processor.desk.outlets import unblock

    click.echo(_outlet_change(obj.config, unblock, key))


def _outlet_change(config: Config, change, *args: str) -> str:
    from processor.desk.outlets import OutletError

    with session_for(config) as session:
        try:
            summary = change(session, *args)
        except OutletError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    return summary
