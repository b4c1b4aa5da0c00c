"""`republish requests`: the inbound log, every request with its outcome and why."""

from __future__ import annotations

from datetime import datetime

import click

from processor.cli.common import Context, day_start, day_type, output_option, session_for


@click.group(invoke_without_command=True)
@click.option("--outcome", type=click.Choice(["answered", "needs_person", "backfilled", "ignored", "pending"]))
@click.option("--outlet", help="Only requests from this outlet.")
@click.option("--since", type=day_type, help="Only requests handled on or after YYYY-MM-DD.")
@output_option
@click.pass_context
def requests(ctx: click.Context, outcome: str | None, outlet: str | None, since: datetime | None, output: str) -> None:
    """The inbound log: every request, its outcome and why; `requests show ID` for one in full."""
    if ctx.invoked_subcommand is not None:
        return
    from processor.desk.inbound_log import list_requests
    from processor.desk.listings import format_requests

    with session_for(ctx.obj.config) as session:
        rows = list_requests(session, outcome=outcome, outlet=outlet, since=day_start(since))
    click.echo(format_requests(rows, output), nl=False)


@requests.command(name="show")
@click.argument("request_id", type=int)
@click.pass_obj
def requests_show(obj: Context, request_id: int) -> None:
    """One request in full: what they wrote, the stories named, every reply as sent, their earlier requests."""
    from processor.desk.inbound_log import request_detail
    from processor.desk.listings import format_request_detail

    with session_for(obj.config) as session:
        detail = request_detail(session, request_id)
    if detail is None:
        raise click.ClickException(f"there is no request {request_id}")
    click.echo(format_request_detail(detail), nl=False)
