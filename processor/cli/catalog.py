"""`republish catalog sync`: read the publication's feeds now, as the worker does every poll_minutes."""

from __future__ import annotations

import sys

import click

from processor.cli.common import Context, ready_engine


@click.group(name="catalog")
def catalog() -> None:
    """The story catalog kept current from the publication's own feeds ([catalog] feeds)."""


@catalog.command(name="sync")
@click.option("--no-send", is_flag=True, help="Leave the correction notices in the outbox for the worker.")
@click.pass_obj
def catalog_sync(obj: Context, no_send: bool) -> None:
    """Poll every feed (a conditional GET each), import what is new, and tell the outlets that ran a story
    that changed; their notices are sent now."""
    from processor.app import send_from_outbox, sync_catalog

    config = obj.config
    if not config.catalog.feeds:
        raise click.ClickException("no feeds to read: list them in [catalog] feeds (see config.example.toml)")
    engine = ready_engine(config)
    try:
        result = sync_catalog(config, engine)
    finally:
        engine.dispose()
    for poll in result.polls:
        if poll.outcome == "failed":
            click.echo(f"{poll.url}: not read: {poll.problem}")
        elif poll.outcome == "not modified":
            click.echo(f"{poll.url}: not modified since the last poll")
        else:
            click.echo(f"{poll.url}: {poll.created} new, {poll.updated} read again, {len(poll.revised)} changed")
    told = result.told
    if told.queued or told.waiting:
        click.echo(f"correction notices: {len(told.queued)} queued, {told.waiting} waiting for an editor "
                   f"(`republish review`)")
    if told.queued and not no_send:
        sent = send_from_outbox(config, told.queued)
        click.echo("the running worker sends them" if sent is None else f"{sent} of {len(told.queued)} sent now")
    if any(poll.outcome == "failed" for poll in result.polls):
        sys.exit(1)
