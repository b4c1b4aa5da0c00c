"""`republish pickups`: the pickup log."""

from __future__ import annotations

from datetime import datetime

import click

from processor.cli.common import Context, day_after, day_start, day_type, output_option, session_for
from processor.urls import url_key


@click.command()
@output_option
@click.option("--outlet", help="Only this outlet (a domain, or an address for free-mail senders).")
@click.option("--story", help="Only this story (any form of its URL).")
@click.option("--since", type=day_type, help="Only pickups requested on or after YYYY-MM-DD.")
@click.option("--until", type=day_type, help="Only pickups requested on or before YYYY-MM-DD.")
@click.option("--decision", type=click.Choice(["granted", "declined"]))
@click.option("--limit", type=click.IntRange(min=0), help="At most this many, latest first (default: 100 for the "
              "table, all for csv and json; 0: all).")
@click.pass_obj
def pickups(obj: Context, output: str, outlet: str | None, story: str | None, since: datetime | None,
            until: datetime | None, decision: str | None, limit: int | None) -> None:
    """The pickup log: which outlet took which story, when, and what was sent."""
    from processor.desk.pickup_log import format_pickups
    from processor.records.store import list_pickups

    if limit is None:
        limit = 100 if output == "table" else 0  # a screenful to read; exports are whole
    with session_for(obj.config) as session:
        rows = list_pickups(session, outlet=outlet, story_key=url_key(story) if story else None,
                            since=day_start(since), until=day_after(until), decision=decision, limit=limit or None)
    click.echo(format_pickups(rows, output), nl=False)
