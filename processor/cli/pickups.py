"""`republish pickups`: the pickup log."""

from __future__ import annotations

from datetime import datetime

import click

from processor.cli.common import Context, day_type, output_option, session_for


@click.command()
@output_option
@click.option("--outlet", help="Only this outlet (a domain, or an address for free-mail senders).")
@click.option("--story", help="Only this story (any form of its URL).")
@click.option("--since", type=day_type, help="Only pickups first requested on or after YYYY-MM-DD.")
@click.option("--until", type=day_type, help="Only pickups first requested on or before YYYY-MM-DD.")
@click.option("--decision", type=click.Choice(["granted", "declined"]))
@click.option("--limit", type=click.IntRange(min=0), help="At most this many, latest first (default: 100 for the "
              "table, all for csv and json; 0: all).")
@click.pass_obj
def pickups(obj: Context, output: str, outlet: str | None, story: str | None, since: datetime | None,
            until: datetime | None, decision: str | None, limit: int | None) -> None:
    """The pickup log: which outlet took which story, when, and what was sent."""
    from processor.desk.pickup_log import LogFilter, format_pickups, pickup_records

    if limit is None:
        limit = 100 if output == "table" else 0  # a screenful to read; exports are whole
    flt = LogFilter(outlet=outlet or "", story=story or "", since=since.date() if since else None,
                    until=until.date() if until else None, decision=decision or "")
    with session_for(obj.config) as session:
        records = pickup_records(session, flt, limit or None)
    click.echo(format_pickups(records, output), nl=False)
