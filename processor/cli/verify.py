"""`republish verify`: check partners' live copies against the guidelines."""

from __future__ import annotations

import click

from processor.cli.common import Context, now, session_for


@click.command()
@click.argument("pickup_id", type=int, required=False)
@click.option("--all", "check_all", is_flag=True, help="Every known live copy.")
@click.option("--url", help="A live copy's address, given by an editor (with --story).")
@click.option("--story", "story_url", metavar="URL", help="The story the --url page republishes.")
@click.pass_obj
def verify(obj: Context, pickup_id: int | None, check_all: bool, url: str | None, story_url: str | None) -> None:
    """Check republished copies against the guidelines; copies with violations go to the review queue."""
    from functools import partial

    from processor.catalog.fetch import FetchError
    from processor.desk.listings import format_verified
    from processor.desk.live_fetch import fetch_live
    from processor.desk.verify import copies_to_verify, copy_for_url, verify_copy

    if sum((pickup_id is not None, check_all, url is not None)) != 1 or bool(url) != bool(story_url):
        raise click.UsageError("give one of: PICKUP_ID, --all, or --url URL --story URL")
    config = obj.config
    fetch = partial(fetch_live, timeout=config.worker.fetch_timeout, max_bytes=config.worker.fetch_max_bytes)
    results = []
    with session_for(config) as session:
        checked_at = now()
        try:
            copies = ([copy_for_url(session, url, story_url, checked_at)] if url
                      else copies_to_verify(session, pickup_id=pickup_id))
        except FetchError as exc:
            raise click.ClickException(str(exc)) from None
        for copy in copies:
            results.append(verify_copy(session, copy, config.publication, fetch, checked_at))
            session.commit()
    click.echo(format_verified(results), nl=False)
